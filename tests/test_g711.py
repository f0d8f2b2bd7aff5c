import numpy as np
import soundfile as sf
from switchboard.telephony import g711


def _tone() -> np.ndarray:
    t = np.arange(8000) / 8000
    return (np.sin(2 * np.pi * 440 * t) * 20000).astype(np.int16)


def test_ulaw_matches_libsndfile(tmp_path):
    x = _tone()
    sf.write(tmp_path / "u.wav", x, 8000, subtype="ULAW")
    ref, _ = sf.read(tmp_path / "u.wav", dtype="int16")
    assert np.array_equal(g711.ulaw_decode(g711.ulaw_encode(x)), ref)


def test_alaw_matches_libsndfile(tmp_path):
    x = _tone()
    sf.write(tmp_path / "a.wav", x, 8000, subtype="ALAW")
    ref, _ = sf.read(tmp_path / "a.wav", dtype="int16")
    assert np.array_equal(g711.alaw_decode(g711.alaw_encode(x)), ref)


def test_roundtrip_error_is_small():
    x = _tone()
    y = g711.ulaw_decode(g711.ulaw_encode(x)).astype(int)
    assert np.max(np.abs(y - x)) < 0.03 * 20000
