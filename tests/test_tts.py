import numpy as np
from switchboard.pipeline.stages.tts import sentences


def test_piper_speaks_at_16k(bundle):
    audio = bundle.tts().synthesize("Thanks for calling. How can I help?")
    assert audio.dtype == np.float32 and 1.0 < len(audio) / 16000 < 5.0
    assert np.sqrt(np.mean(audio**2)) > 0.01


def test_sentence_split():
    assert sentences("Sure. I can help! Can you? ") == ["Sure.", "I can help!", "Can you?"]


def test_piper_without_noise_renders_the_same_audio_every_time():
    """A test's caller must say the same thing the same way every run: Piper samples its
    voice variation, so by default two renderings differ."""
    from switchboard.models.tts import PiperTTS

    line = "Five five five zero one zero zero two zero two."
    steady = PiperTTS(length_scale=1.1, noise=False)
    assert np.array_equal(steady.synthesize(line), steady.synthesize(line))
    varied = PiperTTS(length_scale=1.1)
    a, b = varied.synthesize(line), varied.synthesize(line)
    assert len(a) != len(b) or not np.array_equal(a, b)
