"""The VAD models on real speech and on silence."""

import numpy as np
import pytest
from switchboard.models.vad import make_scorer
from switchboard.telephony.audio_file import load
from switchboard.telephony.resample import float_to_pcm16


@pytest.mark.parametrize("name", ["silero", "webrtc"])
def test_speech_scores_high_and_silence_low(name, data):
    scorer = make_scorer(name)
    audio = float_to_pcm16(load(data / "asr" / "whisper" / "jfk_16k.wav").audio)
    n = scorer.window_samples
    scores = [scorer.score(audio[i : i + n].tobytes()) for i in range(0, len(audio) - n, n)]
    noise = np.random.default_rng(0).normal(0, 30, n * 40).astype(np.int16)  # a quiet line
    silence = [scorer.score(noise[i : i + n].tobytes()) for i in range(0, len(noise), n)]
    assert np.mean(np.array(scores) > 0.5) > 0.4
    assert max(silence[10:]) < 0.5  # after the model settles (WebRTC adapts its noise floor)


def test_unknown_vad():
    with pytest.raises(ValueError):
        make_scorer("nope")
