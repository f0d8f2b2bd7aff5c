import numpy as np
from switchboard.pipeline.stages.tts import sentences


def test_piper_speaks_at_16k(bundle):
    audio = bundle.tts().synthesize("Thanks for calling. How can I help?")
    assert audio.dtype == np.float32 and 1.0 < len(audio) / 16000 < 5.0
    assert np.sqrt(np.mean(audio**2)) > 0.01


def test_sentence_split():
    assert sentences("Sure. I can help! Can you? ") == ["Sure.", "I can help!", "Can you?"]
