"""A party's inbound frames, played out one per 20 ms: the pacing every network edge needs.

Frames arrive from the network in bursts (TCP after a stall, WebRTC after jitter); the
call wants one 20 ms frame per 20 ms, like a jitter buffer's playout. A burst is smoothed,
a backlog beyond ``max_backlog`` is dropped from the oldest (so the party is never heard
late), and a gap is waited out without advancing the clock (a pause is not loss).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

FRAME_S = 0.02


class PacedFrames:
    """Frames pushed at network pace, popped at 20 ms pace."""

    def __init__(self, max_backlog: int = 50) -> None:
        self._frames: deque[bytes] = deque()
        self._max = max_backlog
        self._arrived = asyncio.Event()
        self._ended = asyncio.Event()
        self._next_at: float | None = None
        #: Frames dropped because the backlog was too long.
        self.dropped = 0

    def push(self, frame: bytes) -> None:
        self._frames.append(frame)
        while len(self._frames) > self._max:
            self._frames.popleft()
            self.dropped += 1
        self._arrived.set()

    def end(self) -> None:
        """The party is gone: :meth:`pop` returns None from now on."""
        self._ended.set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def pop(self) -> bytes | None:
        """The next frame, no sooner than 20 ms after the last; None once ended."""
        while not self._frames:
            if self._ended.is_set():
                return None
            self._arrived.clear()
            ended = asyncio.ensure_future(self._ended.wait())
            arrived = asyncio.ensure_future(self._arrived.wait())
            try:
                await asyncio.wait({ended, arrived}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                arrived.cancel()
            self._next_at = None  # a pause in the stream is not loss: restart the clock
        if self._ended.is_set():
            return None
        now = time.monotonic()
        if self._next_at is None or now - self._next_at > 0.2:
            self._next_at = now
        delay = self._next_at - now
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_at += FRAME_S
        return self._frames.popleft()
