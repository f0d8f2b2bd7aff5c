import numpy as np
import pytest
import soundfile as sf
from switchboard.models.prosody import analyse, pitch_track


def _voice(f0: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)).astype(np.float32) * 0.2


@pytest.mark.parametrize("f0", [90.0, 150.0, 240.0])
def test_pitch_of_harmonic_tone(f0):
    track = pitch_track(_voice(f0))
    voiced = track[track > 0]
    assert len(voiced) > 0.8 * len(track)
    assert abs(np.median(voiced) - f0) / f0 < 0.03


def test_gain_does_not_change_pitch_features():
    x = _voice(150.0)
    a, b = analyse(x), analyse(x * 0.05)
    assert abs(a.f0_median_hz - b.f0_median_hz) < 1
    assert abs(a.energy_db - b.energy_db - 26.0) < 0.5  # level moves, by the gain


def test_real_voices_male_lower_than_female(data):
    male = data / "emotion" / "ravdess" / "03-01-01-01-01-01-01.flac"
    female = data / "emotion" / "ravdess" / "03-01-01-01-01-01-02.flac"
    fm = analyse(sf.read(male, dtype="float32")[0])
    ff = analyse(sf.read(female, dtype="float32")[0])
    assert 70 < fm.f0_median_hz < 180 < ff.f0_median_hz < 320
    assert 1.0 < fm.speaking_rate_sps < 8.0


def test_the_emotion_reference_counts_only_other_speech():
    """The score's confidence reads how much speech *besides* the utterance is in its
    reference: none for the opening utterance (it makes up its own reference), then what
    came before, and the frozen total once the reference stops learning."""
    import numpy as np
    from switchboard.models.emotion import N_FEATURES, SpeakerBaseline
    from switchboard.pipeline.stages.prosody import _reference

    base = SpeakerBaseline(min_seconds=3.0, max_seconds=6.0)
    got = [_reference(base, np.full(N_FEATURES, float(k)), 2.0) for k in range(5)]
    assert [s for _, s in got] == [0.0, 2.0, 4.0, 6.0, 6.0]
    assert np.allclose(got[0][0], 0.0)  # the opening utterance is its own reference
    assert np.allclose(got[1][0], 0.5)  # still learning: joins before it is read
    assert np.allclose(got[2][0], 0.5)  # ready (4 s): read before this one joins
    assert np.allclose(got[4][0], 1.0)  # frozen at 6 s: the first three


def test_the_stage_analyses_a_long_turn_on_its_last_seconds(settings_factory):
    """A 18 s turn (10 s at 120 Hz, then 8 s at 240 Hz) is analysed on its last
    ``emotion_window_s`` (8 s), as the anger heads are: the cost stays within budget
    however long the caller talks, and the features say where the turn ended up."""
    import asyncio

    from pipecat.processors.frame_processor import FrameDirection
    from switchboard.pipeline.audio_ring import AudioRing
    from switchboard.pipeline.context import CallContext
    from switchboard.pipeline.events import SpeechEnded
    from switchboard.pipeline.frames import EventFrame
    from switchboard.pipeline.stages.prosody import ProsodyStage

    settings = settings_factory()
    assert settings.prosody.emotion_window_s == 8.0
    audio = np.concatenate([_voice(120.0, 10.0), _voice(240.0, 8.0)])
    assert analyse(audio).f0_median_hz < 130  # the whole turn reads low

    async def run():
        ctx = CallContext("long-turn", settings)
        ring = AudioRing(seconds=30.0)
        ring.append(0.0, audio)
        stage = ProsodyStage(ctx, "caller", ring)
        ended = SpeechEnded(call_id="long-turn", leg="caller", t_audio=18.0, utterance=1,
                            t_start=0.0)
        try:
            await stage.process_frame(EventFrame(ended), FrameDirection.DOWNSTREAM)
        finally:
            await stage.close()
        return [e for e in ctx.bus.history if e.kind == "prosody"]

    (features,) = asyncio.run(run())
    assert abs(features.f0_median_hz - 240.0) < 8
