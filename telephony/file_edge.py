"""A party made of a recording: plays it into the call in real time, keeps what it hears.

The in-process edge: a recorded caller for the capacity benchmark, an agent's recorded
microphone, and the tests of the call model, with the same pacing and the same seam as a
SIP or WebRTC party (telephony/edge.py). What the party hears is kept, frame by frame, so a
test can check exactly which audio reached which party.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
from switchboard.telephony.edge import FRAME_BYTES


class FileEdge:
    """A recording as a live party.

    ``receive`` releases one 20 ms frame per 20 ms (or back to back with
    ``realtime=False``), then ``tail_s`` of silence, then reports the party gone — unless
    ``hang_up`` is False, when silence goes on until the call closes the edge.
    """

    def __init__(self, pcm: bytes, peer: str = "file:", realtime: bool = True,
                 tail_s: float = 1.0, hang_up: bool = True):
        pcm = pcm + bytes(int(tail_s * 32000))
        pcm += bytes((-len(pcm)) % FRAME_BYTES)
        self._frames = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
        self.peer = peer
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_hold: Callable[[bool], None] | None = None
        self.realtime = realtime
        self.hang_up = hang_up
        self.heard: list[bytes] = []
        self.closed: str | None = None
        self._i = 0
        self._start: float | None = None
        self._closed = asyncio.Event()

    @classmethod
    def from_audio(cls, audio: np.ndarray, **kwargs) -> FileEdge:
        """From float32 16 kHz mono samples."""
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        return cls(pcm, **kwargs)

    async def receive(self) -> bytes | None:
        if self._closed.is_set():
            return None
        if self._start is None:
            self._start = time.monotonic()
        if self.realtime:
            delay = self._start + (self._i + 1) * 0.02 - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._closed.wait(), delay)
                    return None
                except TimeoutError:
                    pass
        else:
            await asyncio.sleep(0)
        i, self._i = self._i, self._i + 1
        if i < len(self._frames):
            return self._frames[i]
        return None if self.hang_up else bytes(FRAME_BYTES)

    def send(self, pcm: bytes) -> None:
        self.heard.append(pcm)

    def leave(self) -> None:
        """The party hangs up: ``receive`` reports it gone from the next frame."""
        self._closed.set()

    def press(self, digit: str) -> None:
        """The party presses a key."""
        if self.on_dtmf:
            self.on_dtmf(digit)

    async def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self._closed.set()

    def heard_audio(self) -> np.ndarray:
        """Everything this party heard, as int16 samples."""
        return np.frombuffer(b"".join(self.heard), dtype="<i2")
