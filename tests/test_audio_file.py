import numpy as np
import pytest
import soundfile as sf
from switchboard.telephony import g711
from switchboard.telephony.audio_file import AudioFileError, load


def _speechlike(rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("rate,channels", [(8000, 1), (22050, 2), (44100, 2), (48000, 1)])
def test_any_rate_and_channels_become_16k_mono(tmp_path, rate, channels):
    x = np.stack([_speechlike(rate)] * channels, axis=1)
    sf.write(tmp_path / "a.wav", x, rate)
    rec = load(tmp_path / "a.wav")
    assert rec.audio.ndim == 1
    assert abs(rec.duration_s - 1.0) < 0.01
    assert rec.source_rate == rate and rec.source_channels == channels


def test_ulaw_wav_and_raw_ulaw(tmp_path):
    x = (_speechlike(8000) * 32767).astype(np.int16)
    sf.write(tmp_path / "u.wav", x, 8000, subtype="ULAW")
    (tmp_path / "u.ul").write_bytes(g711.ulaw_encode(x))
    a, b = load(tmp_path / "u.wav"), load(tmp_path / "u.ul")
    assert np.allclose(a.audio, b.audio, atol=1e-4)
    assert "ULAW" in a.source_format and b.source_format == "raw G.711"


def test_not_audio(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio")
    with pytest.raises(AudioFileError, match="not a readable audio file"):
        load(p)


def test_empty(tmp_path):
    sf.write(tmp_path / "e.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioFileError, match="empty"):
        load(tmp_path / "e.wav")
    (tmp_path / "e.ul").write_bytes(b"")
    with pytest.raises(AudioFileError, match="empty"):
        load(tmp_path / "e.ul")


def test_truncated(tmp_path):
    sf.write(tmp_path / "t.flac", _speechlike(16000, 2.0), 16000)
    data = (tmp_path / "t.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioFileError):
        load(tmp_path / "cut.flac")


def test_missing(tmp_path):
    with pytest.raises(AudioFileError, match="no such file"):
        load(tmp_path / "nope.wav")


def test_real_8k_telephone_prompt(data):
    rec = load(data / "asr" / "asterisk_8k" / "SIP_Test_Success.wav")
    assert rec.source_rate == 8000 and rec.duration_s > 0.5


@pytest.mark.parametrize("subtype", ["PCM_16", "ULAW"])
def test_truncated_wav(tmp_path, subtype):
    """A WAV cut to half its declared samples: libsndfile reads the half that is there
    and reports that as the length, so only the header's declared length catches it."""
    sf.write(tmp_path / "t.wav", _speechlike(8000, 2.0), 8000, subtype=subtype)
    data = (tmp_path / "t.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioFileError, match=r"truncated \(\d+ of 16000 frames present\)"):
        load(tmp_path / "cut.wav")
    assert load(tmp_path / "t.wav").duration_s == pytest.approx(2.0)  # the whole file loads


def test_streamed_wav_without_a_length_is_read(tmp_path):
    """A recorder that could not know the length writes 0xFFFFFFFF: no claim to check."""
    sf.write(tmp_path / "s.wav", _speechlike(16000, 1.0), 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "s.wav").read_bytes())
    i = data.index(b"data")
    data[i + 4 : i + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "s.wav").write_bytes(bytes(data))
    assert abs(load(tmp_path / "s.wav").duration_s - 1.0) < 0.01
