"""A ring of recent audio indexed by audio time, for stages that look back at utterances."""

from __future__ import annotations

import numpy as np


class AudioRing:
    """The last ``seconds`` of one leg's 16 kHz audio as float32."""

    def __init__(self, seconds: float = 60.0, rate: int = 16000):
        self.rate = rate
        self._buf = np.zeros(int(seconds * rate), dtype=np.float32)
        self._end = 0  # absolute sample index one past the newest sample

    @property
    def t_end(self) -> float:
        return self._end / self.rate

    def append(self, t_audio: float, samples: np.ndarray) -> None:
        start = int(round(t_audio * self.rate))
        if start > self._end:  # a gap (lost frames): fill with silence
            self._write(np.zeros(start - self._end, dtype=np.float32))
        elif start < self._end:  # overlap: keep only the new part
            samples = samples[self._end - start :]
        self._write(samples)

    def _write(self, samples: np.ndarray) -> None:
        n = len(self._buf)
        for i in range(0, len(samples), n):
            part = samples[i : i + n]
            pos = self._end % n
            first = min(len(part), n - pos)
            self._buf[pos : pos + first] = part[:first]
            self._buf[: len(part) - first] = part[first:]
            self._end += len(part)

    def slice(self, t0: float, t1: float) -> np.ndarray:
        """Audio between ``t0`` and ``t1`` seconds (clipped to what is still held)."""
        n = len(self._buf)
        a = max(int(round(t0 * self.rate)), self._end - n, 0)
        b = min(int(round(t1 * self.rate)), self._end)
        if b <= a:
            return np.zeros(0, dtype=np.float32)
        idx = np.arange(a, b) % n
        return self._buf[idx]
