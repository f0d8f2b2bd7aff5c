import numpy as np
from switchboard.telephony.resample import float_to_pcm16, pcm16_to_float, resample, to_mono


def test_resample_keeps_frequency():
    t = np.arange(8000) / 8000
    x = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    y = resample(x, 8000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 500) < 2


def test_pcm_roundtrip_and_clipping():
    x = np.array([0.0, 0.5, -0.5, 2.0, -2.0], np.float32)
    y = pcm16_to_float(float_to_pcm16(x).tobytes())
    assert np.allclose(y[:3], x[:3], atol=1e-4)
    assert y[3] > 0.99 and y[4] < -0.99


def test_to_mono():
    assert to_mono(np.ones((10, 2))).shape == (10,)
