"""Hold music: what a caller hears while an agent's phone rings, never dead air.

Generated, not recorded, so the project ships no audio file with its own licence: a slow
pentatonic arpeggio of soft sine notes, loud enough to say "you are still connected",
quiet enough under a spoken "thanks for waiting". It survives G.711 (all energy well inside
300–3400 Hz) and loops seamlessly.
"""

from __future__ import annotations

import numpy as np

RATE = 16000
#: A major pentatonic phrase (Hz), one note every half second.
NOTES = (523.25, 659.25, 783.99, 880.00, 783.99, 659.25, 587.33, 659.25)
NOTE_S = 0.5
LEVEL = 0.08  # peak, about -22 dBFS


def hold_music(notes: tuple[float, ...] = NOTES) -> bytes:
    """One loop of hold music: 16 kHz mono PCM16, a whole number of 20 ms frames."""
    n = int(NOTE_S * RATE)
    t = np.arange(n) / RATE
    # Soft attack and a long decay, so notes chime rather than beep.
    envelope = np.minimum(t / 0.02, 1.0) * np.exp(-3.0 * t)
    parts = []
    for f in notes:
        tone = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)
        parts.append(LEVEL / 1.3 * envelope * tone)
    audio = np.concatenate(parts)
    return (audio * 32767).astype("<i2").tobytes()
