"""The call's mixer: every 20 ms, each listener gets the sum of the sources it hears.

Sources come in two kinds. A :class:`LiveSource` is a party's microphone: frames arrive
from its edge at their own pace and the mixer takes the newest (a short backlog is kept so
network jitter does not cut words, a long one is dropped so the party is never heard late).
A :class:`PlayoutSource` is audio we generate (the bot's replies, the coach's prompts, hold
music): whole utterances are queued at once and played one frame per tick, so flushing the
queue silences them at the next tick (barge-in). Every source advances once per tick
whoever hears it, so switching a route mid-call never replays or skips audio.

All audio is 16 kHz mono PCM16; codecs and rates stay in the edges.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from switchboard.telephony.edge import FRAME_BYTES, SILENCE
from switchboard.telephony.routing import Routing

log = logging.getLogger(__name__)

FRAME_S = 0.02
#: A live party more than this many frames ahead of the mixer is heard late: drop the oldest.
LIVE_BACKLOG = 4
#: The mixer behind its schedule by more than this resynchronises instead of bursting.
MAX_LAG_S = 0.2


class LiveSource:
    """A party's microphone, as the mixer reads it."""

    def __init__(self) -> None:
        self._frames: deque[bytes] = deque(maxlen=LIVE_BACKLOG)

    def push(self, pcm: bytes) -> None:
        self._frames.append(pcm)

    def pull(self) -> bytes:
        return self._frames.popleft() if self._frames else SILENCE


@dataclass
class Playback:
    """One queued piece of generated audio (a bot reply, a coach prompt)."""

    tag: str
    frames: deque[bytes]
    total: int
    started_at: float | None = None  # monotonic time its first frame went out

    @property
    def played(self) -> int:
        return self.total - len(self.frames)


class PlayoutSource:
    """Generated audio, played one frame per tick in the order it was queued.

    ``on_start(tag, t)`` is called at the tick that sends a piece's first frame (the
    moment a listener's stream first holds it), ``on_done(tag)`` after its last.
    """

    def __init__(self, loop_audio: bytes | None = None) -> None:
        self._queue: deque[Playback] = deque()
        self._loop = _frames_of(loop_audio) if loop_audio else None
        self._loop_i = 0
        self.on_start: Callable[[str, float], None] | None = None
        self.on_done: Callable[[str], None] | None = None

    def play(self, pcm: bytes, tag: str = "") -> None:
        """Queue ``pcm`` (any length; padded to whole frames) after what is queued."""
        frames = _frames_of(pcm)
        if frames:
            self._queue.append(Playback(tag, deque(frames), len(frames)))

    def extend(self, pcm: bytes, tag: str) -> None:
        """Append ``pcm`` to the queued piece ``tag`` (a reply arriving sentence by sentence),
        or queue it as a new piece."""
        for item in self._queue:
            if item.tag == tag:
                frames = _frames_of(pcm)
                item.frames.extend(frames)
                item.total += len(frames)
                return
        self.play(pcm, tag)

    @property
    def playing(self) -> bool:
        return bool(self._queue)

    @property
    def current(self) -> Playback | None:
        return self._queue[0] if self._queue else None

    def flush(self) -> list[Playback]:
        """Drop everything queued; returns what was cut, the one playing first."""
        cut = list(self._queue)
        self._queue.clear()
        return cut

    def pull(self) -> bytes:
        while self._queue:
            item = self._queue[0]
            if not item.frames:
                self._queue.popleft()
                _notify(self.on_done, item.tag)
                continue
            if item.started_at is None:
                item.started_at = time.monotonic()
                _notify(self.on_start, item.tag, item.started_at)
            return item.frames.popleft()
        if self._loop:
            frame = self._loop[self._loop_i % len(self._loop)]
            self._loop_i += 1
            return frame
        return SILENCE


Source = LiveSource | PlayoutSource
Sink = Callable[[bytes], None]


class Mixer:
    """Mixes one call's sources for each listener, one 20 ms tick at a time."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self.sources: dict[str, Source] = {}
        self.sinks: dict[str, Sink] = {}
        #: Called with (listener, pcm) for every mixed frame: recording and tests.
        self.taps: list[Callable[[str, bytes], None]] = []
        self.ticks = 0

    def add_source(self, source_id: str, source: Source) -> Source:
        self.sources[source_id] = source
        return source

    def add_sink(self, listener_id: str, sink: Sink) -> None:
        self.sinks[listener_id] = sink

    def remove(self, node_id: str) -> None:
        self.sources.pop(node_id, None)
        self.sinks.pop(node_id, None)

    def tick(self) -> None:
        """Advance every source one frame and send each listener its mix."""
        frames = {sid: src.pull() for sid, src in list(self.sources.items())}
        self.ticks += 1
        for listener, sink in list(self.sinks.items()):
            heard = [frames[s] for s in self.routing.sources_for(listener) if s in frames]
            pcm = mix(heard)
            for tap in self.taps:
                tap(listener, pcm)
            try:
                sink(pcm)
            except Exception:  # noqa: BLE001 - one party's broken edge must not stop the rest
                log.exception("sending to %s failed", listener)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every 20 ms on the monotonic clock until ``stop`` is set."""
        next_at = time.monotonic()
        while not stop.is_set():
            self.tick()
            next_at += FRAME_S
            delay = next_at - time.monotonic()
            if delay < -MAX_LAG_S:
                log.warning("mixer %.0f ms behind; resynchronising", -delay * 1000)
                next_at = time.monotonic()
                delay = 0.0
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)


def mix(frames: Iterable[bytes]) -> bytes:
    """Sum PCM16 frames with saturation; silence for none."""
    frames = [f for f in frames if f is not SILENCE]
    if not frames:
        return SILENCE
    if len(frames) == 1:
        return frames[0]
    acc = np.zeros(FRAME_BYTES // 2, np.int32)
    for f in frames:
        acc += np.frombuffer(f, "<i2")
    return np.clip(acc, -32768, 32767).astype("<i2").tobytes()


def _notify(callback: Callable | None, *args) -> None:
    """Tell a listener of the playout; its bug must not stop the call's audio."""
    if callback is not None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001
            log.exception("playout callback failed")


def _frames_of(pcm: bytes) -> list[bytes]:
    pad = (-len(pcm)) % FRAME_BYTES
    pcm = pcm + bytes(pad)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
