"""A jitter buffer for one RTP stream: reorder, drop late and duplicate packets, mark gaps.

Playout is pulled by the caller once per packet interval (20 ms); the buffer only decides
*what* comes out: the next packet in sequence order, :data:`LOST` for a missing one (the
caller conceals it), or None while there is nothing to play (underrun: the caller plays
silence and the stream does not advance, so a pause in sending is not counted as loss).

Adaptive depth (``min_prefetch``): every packet held is 20 ms added to what the caller
waits for the bot's reply, so the depth follows the jitter the stream shows. A short
underrun (the next packet was late, not a sender's pause) deepens it by one packet, up to
``max_prefetch``; a window of ``window`` pulls in which the buffer never ran below one
spare packet makes it one shallower, and asks the caller to shed a packet (:attr:`shed`),
which it does on a quiet one, so no speech is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class _Lost:
    """Marker for a packet that never arrived in time."""

    def __repr__(self) -> str:
        return "LOST"


LOST: Final = _Lost()


@dataclass
class JitterStats:
    """Counters for the call record and the tests."""

    received: int = 0
    played: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    overflow: int = 0
    resets: int = 0
    deepened: int = 0  # adaptive depth: one packet more after a late one
    shallowed: int = 0  # one packet less after a window with a spare one throughout


#: An underrun this many pulls long or shorter was a late packet; longer, a sender's pause.
SHORT_UNDERRUN = 3


class JitterBuffer:
    """Orders packets by extended sequence number and plays them out after ``prefetch``.

    ``prefetch`` packets are held before playout starts (the jitter the buffer absorbs);
    at most ``capacity`` are kept, the oldest dropped first when a consumer stalls. With
    ``min_prefetch``, ``prefetch`` is where the depth starts and it adapts between
    ``min_prefetch`` and ``max_prefetch`` (module docstring); without, it stays.
    """

    def __init__(self, prefetch: int = 3, capacity: int = 50, min_prefetch: int | None = None,
                 max_prefetch: int = 8, window: int = 150) -> None:
        self.prefetch = prefetch
        self.capacity = capacity
        self.min_prefetch = min_prefetch
        self.max_prefetch = max(max_prefetch, prefetch)
        self.window = window
        #: Packets the caller should drop (on quiet audio) to make the buffer shallower.
        self.shed = 0
        self._pulls = 0  # pulls in the current window
        self._low: int | None = None  # fewest packets left after a pull in the window
        self._starved = 0  # empty pulls in the current underrun (0: none)
        self.stats = JitterStats()
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None  # extended seq of the next packet to play
        self._highest: int | None = None  # highest extended seq seen
        self._started = False
        self._began = False  # something has been played: earlier packets are now late

    def reset(self) -> None:
        """Start over (a new SSRC); counters are kept, and the depth learnt."""
        self._packets.clear()
        self._next = self._highest = None
        self._started = self._began = False
        self.shed = self._pulls = self._starved = 0
        self._low = None
        self.stats.resets += 1

    def __len__(self) -> int:
        return len(self._packets)

    def _extend(self, seq: int) -> int:
        # 16-bit sequence numbers wrap; pick the extended value nearest the highest seen.
        if self._highest is None:
            return seq
        base = self._highest & ~0xFFFF
        candidates = (base - 0x10000 + seq, base + seq, base + 0x10000 + seq)
        return min(candidates, key=lambda c: abs(c - self._highest))

    def put(self, seq: int, payload: bytes) -> bool:
        """Add a packet; False if it was dropped (late or duplicate)."""
        ext = self._extend(seq & 0xFFFF)
        if self._began and self._next is not None and ext < self._next:
            self.stats.late += 1
            return False
        if ext in self._packets:
            self.stats.duplicate += 1
            return False
        if self._highest is not None and ext - self._highest > 3000:
            # A jump this large is a restarted sender, not loss: resynchronise.
            self._packets.clear()
            self._next = None
            self._started = False
        self._packets[ext] = payload
        self._highest = ext if self._highest is None else max(self._highest, ext)
        if self._next is None:
            self._next = ext
        elif ext < self._next:
            self._next = ext
        while len(self._packets) > self.capacity:
            oldest = min(self._packets)
            del self._packets[oldest]
            self._next = min(self._packets)
            self.stats.overflow += 1
        self.stats.received += 1
        return True

    def pop(self) -> bytes | _Lost | None:
        """The next packet in order, LOST for a gap, None when there is nothing to play."""
        if not self._packets or self._next is None:
            if self._began and (self._started or self._starved):
                self._starved += 1
            self._started = False  # underrun: refill before playing again
            return None
        if not self._started:
            if len(self._packets) < self.prefetch:
                return None
            self._started = True
            if self._starved:
                self._after_underrun()
        self._began = True
        payload = self._packets.pop(self._next, None)
        self._next += 1
        self._adapt()
        if payload is None:
            self.stats.lost += 1
            return LOST
        self.stats.played += 1
        return payload

    def _after_underrun(self) -> None:
        # Short: a packet came late, so the depth was too small. Long: the sender paused.
        late = self._starved <= SHORT_UNDERRUN
        self._starved = 0
        self._pulls, self._low = 0, None
        if self.min_prefetch is not None and late and self.prefetch < self.max_prefetch:
            self.prefetch += 1
            self.stats.deepened += 1

    def _adapt(self) -> None:
        if self.min_prefetch is None:
            return
        left = len(self._packets)
        self._low = left if self._low is None else min(self._low, left)
        self._pulls += 1
        if self._pulls < self.window:
            return
        if self._low >= 1 and self.prefetch > self.min_prefetch:
            self.prefetch -= 1
            self.shed += 1
            self.stats.shallowed += 1
        self._pulls, self._low = 0, None
