"""Sample-rate conversion and channel mixing to the pipeline's internal format."""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import resample_poly

INTERNAL_RATE = 16000


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) array; pass 1-D arrays through."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=1)


def resample(audio: np.ndarray, rate: int, target: int = INTERNAL_RATE) -> np.ndarray:
    """Polyphase resampling of float audio from ``rate`` to ``target`` Hz."""
    if rate <= 0:
        raise ValueError(f"invalid sample rate {rate}")
    if rate == target:
        return audio.astype(np.float32, copy=False)
    g = gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to int16, clipping rather than wrapping on overload."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray | bytes) -> np.ndarray:
    """int16 samples (array or little-endian bytes) to float32 in [-1, 1)."""
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        pcm = np.frombuffer(pcm, dtype="<i2")
    return pcm.astype(np.float32) / 32768.0
