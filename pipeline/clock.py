"""Map positions in a leg's audio to the moment that audio was captured.

Latency is measured from capture, so a stage that publishes something about audio time
``t`` asks the clock when the frame holding ``t`` arrived.
"""

from __future__ import annotations

import bisect
import time
from collections import deque


class AudioClock:
    """Capture times of one leg's recent frames (the last ``horizon_s`` seconds)."""

    def __init__(self, horizon_s: float = 120.0, frame_s: float = 0.02):
        self._t: deque[float] = deque(maxlen=int(horizon_s / frame_s))
        self._captured: deque[float] = deque(maxlen=int(horizon_s / frame_s))

    def record(self, t_audio: float, captured: float) -> None:
        self._t.append(t_audio)
        self._captured.append(captured)

    def captured_at(self, t_audio: float) -> float:
        """Capture time of the frame containing ``t_audio`` (now, if unknown)."""
        if not self._t:
            return time.monotonic()
        i = bisect.bisect_right(self._t, t_audio) - 1
        i = min(max(i, 0), len(self._t) - 1)
        return self._captured[i]

    def latency_ms(self, t_audio: float) -> float:
        return (time.monotonic() - self.captured_at(t_audio)) * 1000.0
