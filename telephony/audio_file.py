"""Read a recording of any rate, channel count or codec that libsndfile knows.

That covers WAV (PCM, float, G.711 μ-law and A-law), FLAC, OGG and more. A raw headerless
μ-law stream (``.ul``/``.ulaw``/``.mulaw``, the classic 8 kHz telephone capture) is decoded
through :mod:`telephony.g711`. Anything unreadable raises :class:`AudioFileError` with a
one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from switchboard.telephony import g711
from switchboard.telephony.resample import INTERNAL_RATE, resample, to_mono

RAW_ULAW_SUFFIXES = {".ul", ".ulaw", ".mulaw", ".mu"}
RAW_ALAW_SUFFIXES = {".al", ".alaw"}


class AudioFileError(ValueError):
    """A recording that cannot be used: missing, not audio, empty or truncated."""


@dataclass(frozen=True)
class Recording:
    """A recording converted to the internal format, with where it came from."""

    path: str
    audio: np.ndarray  # float32 mono at INTERNAL_RATE
    source_rate: int
    source_channels: int
    source_format: str

    @property
    def duration_s(self) -> float:
        return len(self.audio) / INTERNAL_RATE


def load(path: str | Path) -> Recording:
    """Load ``path`` and convert it to 16 kHz mono float32."""
    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix in RAW_ULAW_SUFFIXES | RAW_ALAW_SUFFIXES:
        data = p.read_bytes()
        if not data:
            raise AudioFileError(f"{p}: empty audio")
        decode = g711.ulaw_decode if suffix in RAW_ULAW_SUFFIXES else g711.alaw_decode
        audio = decode(data).astype(np.float32) / 32768.0
        rate, channels, fmt = g711.RATE, 1, "raw G.711"
    else:
        try:
            info = sf.info(str(p))
            audio, rate = sf.read(str(p), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(f"{p}: not a readable audio file ({_reason(exc)})") from exc
        channels, fmt = info.channels, f"{info.format}/{info.subtype}"
        if info.frames > 0 and len(audio) < info.frames:
            raise AudioFileError(
                f"{p}: truncated ({len(audio)} of {info.frames} frames readable)"
            )
        declared = _declared_wav_frames(p) if info.format == "WAV" else None
        if declared is not None and len(audio) < declared:
            raise AudioFileError(f"{p}: truncated ({len(audio)} of {declared} frames present)")
        audio = to_mono(audio)
    if audio.size == 0:
        raise AudioFileError(f"{p}: empty audio (no samples)")
    if not np.all(np.isfinite(audio)):
        raise AudioFileError(f"{p}: audio contains NaN or infinite samples")
    return Recording(str(p), resample(audio, rate), rate, channels, fmt)


def _declared_wav_frames(p: Path) -> int | None:
    """Frames a RIFF/WAVE file's data chunk declares, or None when it declares no length.

    libsndfile reads a WAV cut short (a copy or an upload that stopped half way) up to
    where the bytes end and reports that as the length, so the header is read here. A
    streaming recorder writes 0 or 0xFFFFFFFF when it cannot know the length: no claim.
    """
    with open(p, "rb") as fh:
        if fh.read(4) != b"RIFF" or not fh.read(4) or fh.read(4) != b"WAVE":
            return None
        block_align = 0
        while True:
            header = fh.read(8)
            if len(header) < 8:
                return None
            chunk, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"fmt ":
                fmt = fh.read(size)
                block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                fh.seek(size % 2, 1)  # chunks are padded to even sizes
            elif chunk == b"data":
                if size in (0, 0xFFFFFFFF) or block_align == 0:
                    return None
                return size // block_align
            else:
                fh.seek(size + size % 2, 1)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text
