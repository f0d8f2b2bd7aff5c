"""Does a known piece of audio appear in a stream? Normalised cross-correlation.

The test of "the caller never hears the whisper prompt": a prompt that leaked into a
stream, even mixed under other speech, scores high; a stream without it scores near zero.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve


def presence(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Best normalised correlation (0..1) of ``needle`` against any window of
    ``haystack`` (both int16 or float, same rate)."""
    x = np.asarray(needle, np.float64)
    y = np.asarray(haystack, np.float64)
    if len(y) < len(x) or not x.any():
        return 0.0
    x = x - x.mean()
    num = fftconvolve(y, x[::-1], mode="valid")
    energy = np.convolve(y * y, np.ones(len(x)), mode="valid")
    den = np.linalg.norm(x) * np.sqrt(np.maximum(energy, 1e-9))
    return float(np.max(np.abs(num) / den))
