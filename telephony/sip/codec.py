"""G.711 at 8 kHz to and from the call's 16 kHz PCM16 frames, without clicks.

telephony/resample.py resamples whole buffers; a call resamples 20 ms at a time, and
filtering each frame on its own would restart the filter at every frame edge (a click
every 20 ms). These classes carry the FIR filter state from one frame to the next.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import firwin, lfilter
from switchboard.telephony import g711

#: Low-pass for both directions: passes the telephone band, stops above 4 kHz.
_TAPS = firwin(48, 3700, fs=16000).astype(np.float64)


class Upsampler:
    """8 kHz int16 to 16 kHz int16, 2x zero-stuffing then a low-pass with carried state."""

    def __init__(self) -> None:
        self._zi = np.zeros(len(_TAPS) - 1)

    def __call__(self, pcm8: np.ndarray) -> np.ndarray:
        stuffed = np.zeros(2 * len(pcm8))
        stuffed[::2] = pcm8
        out, self._zi = lfilter(_TAPS * 2.0, 1.0, stuffed, zi=self._zi)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


class Downsampler:
    """16 kHz int16 to 8 kHz int16: low-pass with carried state, keep every other sample."""

    def __init__(self) -> None:
        self._zi = np.zeros(len(_TAPS) - 1)
        self._phase = 0  # which sample of the next block is kept (odd-length blocks)

    def __call__(self, pcm16: np.ndarray) -> np.ndarray:
        out, self._zi = lfilter(_TAPS, 1.0, pcm16.astype(np.float64), zi=self._zi)
        kept = out[self._phase :: 2]
        self._phase = (self._phase + len(pcm16)) % 2
        return np.clip(np.rint(kept), -32768, 32767).astype(np.int16)


class G711:
    """One G.711 law by encoding name ("PCMU" or "PCMA")."""

    def __init__(self, name: str) -> None:
        name = name.upper()
        if name == "PCMU":
            self.decode, self.encode = g711.ulaw_decode, g711.ulaw_encode
        elif name == "PCMA":
            self.decode, self.encode = g711.alaw_decode, g711.alaw_encode
        else:
            raise ValueError(f"not a G.711 codec: {name}")
        self.name = name
        #: The encoded value of silence, for padding (0xFF in μ-law, 0xD5 in A-law).
        self.silence = self.encode(np.zeros(1, dtype=np.int16))


class Decoder:
    """G.711 payloads in, 16 kHz PCM16 bytes out."""

    def __init__(self, codec: str) -> None:
        self.law = G711(codec)
        self._up = Upsampler()

    def decode(self, payload: bytes) -> bytes:
        """One payload's audio at 16 kHz (twice as many samples as payload bytes)."""
        return self._up(self.law.decode(payload)).tobytes()

    def silence(self, samples8: int) -> bytes:
        """Concealment: silence through the filter, so the edge into it stays smooth."""
        return self._up(np.zeros(samples8, dtype=np.int16)).tobytes()


class Encoder:
    """16 kHz PCM16 bytes in, G.711 payloads out."""

    def __init__(self, codec: str) -> None:
        self.law = G711(codec)
        self._down = Downsampler()

    def encode(self, pcm16: bytes) -> bytes:
        """One frame's payload (half as many bytes as 16 kHz samples)."""
        return self.law.encode(self._down(np.frombuffer(pcm16, dtype="<i2")))
