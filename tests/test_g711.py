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


def test_every_int16_value_matches_libsndfile_full_scale_included(tmp_path):
    """All 65,536 sample values, so the extremes (where the encoders must clip before
    the segment search) are checked too, not only a tone's range."""
    x = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    for name, subtype in (("ulaw", "ULAW"), ("alaw", "ALAW")):
        sf.write(tmp_path / f"{name}.wav", x, 8000, subtype=subtype)
        ref, _ = sf.read(tmp_path / f"{name}.wav", dtype="int16")
        encode, decode = getattr(g711, f"{name}_encode"), getattr(g711, f"{name}_decode")
        assert np.array_equal(decode(encode(x)), ref), name
