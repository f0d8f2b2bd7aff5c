"""Does a known piece of audio appear in a stream? Normalised cross-correlation.

The test of "the caller never hears the whisper prompt": a prompt that leaked into a
stream, even mixed under other speech, scores high; a stream without it scores near zero.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import fftconvolve


def presence(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Best normalised correlation (0..1) of ``needle`` against any window of
    ``haystack`` (both int16 or float, same rate)."""
    if len(haystack) < len(needle) or not np.any(needle):
        return 0.0
    return float(np.max(_series(needle, haystack)))


def _series(needle: np.ndarray, stream: np.ndarray) -> np.ndarray:
    """Normalised correlation of ``needle`` at every position of ``stream``."""
    x = np.asarray(needle, np.float64)
    y = np.asarray(stream, np.float64)
    x = x - x.mean()
    num = fftconvolve(y, x[::-1], mode="valid")
    energy = np.convolve(y * y, np.ones(len(x)), mode="valid")
    return np.abs(num) / (np.linalg.norm(x) * np.sqrt(np.maximum(energy, 1e-9)))


def found(needle: np.ndarray, stream: np.ndarray, rate: int, parts: int = 4,
          slack_s: float = 0.06) -> float:
    """The prompt's presence in ``stream`` (0..1), robust to a few dropped frames.

    A loaded machine's mixer falls behind and the edge's capped send queue then drops a
    frame or two, cutting the prompt where it plays: the whole-prompt correlation of a
    leak falls to about 0.4, near chance. So the prompt is cut in ``parts`` pieces, each
    correlated on its own, and each allowed to sit up to ``slack_s`` from where the
    prompt's start puts it; the score is their mean at the best start. Chance stays
    where it was (each piece must line up with the others)."""
    positions = len(stream) - len(needle) + 1
    if positions <= 0 or not np.any(needle):
        return 0.0
    size = len(needle) // parts
    total = np.zeros(positions)
    for j in range(parts):
        piece = _series(needle[j * size:(j + 1) * size], stream)
        total += maximum_filter1d(piece[j * size:j * size + positions],
                                  size=2 * int(slack_s * rate) + 1)
    return float(total.max() / parts)
