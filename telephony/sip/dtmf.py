"""RFC 4733 telephone-event payloads: DTMF digits in and out of RTP.

A key press is one *event*: several packets sharing one RTP timestamp, the last three
with the end bit. :class:`DtmfReceiver` turns any such run, retransmissions and
reordering included, into exactly one digit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 section 2.3)."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF digit, or None for events that are not digits (flash, tones)."""
        return EVENTS[self.event] if 0 <= self.event < len(EVENTS) else None

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Decode a 4-byte payload; ValueError if it is too short."""
        if len(payload) < 4:
            raise ValueError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = struct.unpack("!BBH", payload[:4])
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return struct.pack("!BBH", self.event, flags, min(self.duration, 0xFFFF))


def event_code(digit: str) -> int:
    """The event number of a digit ("0"-"9", "*", "#", "A"-"D")."""
    code = EVENTS.find(digit.upper())
    if len(digit) != 1 or code < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return code


class DtmfReceiver:
    """Turns telephone-event packets into digits, each event reported once.

    Events are told apart by RTP timestamp. A digit is reported at its first end packet;
    if the end packets are all lost, it is reported when the next event begins, since a
    new timestamp means the previous event is over (RFC 4733 section 2.5.1.5).
    """

    def __init__(self) -> None:
        self._current: int | None = None  # timestamp of the event in progress
        self._current_event: TelephoneEvent | None = None
        self._reported: set[int] = set()
        self.events = 0
        self.bad = 0

    def reset(self) -> None:
        """Forget everything (a new SSRC: timestamps start over)."""
        self.__init__()

    def feed(self, timestamp: int, payload: bytes) -> list[str]:
        """Digits completed by this packet (usually none or one)."""
        try:
            ev = TelephoneEvent.parse(payload)
        except ValueError:
            self.bad += 1
            return []
        if timestamp in self._reported:
            return []  # a retransmitted end packet, or a late one of a finished event
        digits: list[str] = []
        if self._current is not None and timestamp != self._current:
            digits += self._finish(self._current)
        self._current, self._current_event = timestamp, ev
        if ev.end:
            digits += self._finish(timestamp)
        return digits

    def _finish(self, timestamp: int) -> list[str]:
        ev = self._current_event
        self._reported.add(timestamp)
        if len(self._reported) > 64:  # keep the memory bounded on a long call
            self._reported = set(sorted(self._reported)[-32:])
        self._current, self._current_event = None, None
        if ev is None or ev.digit is None:
            return []
        self.events += 1
        return [ev.digit]


def event_packets(digit: str, duration_ms: int = 100, volume: int = 10) -> list[TelephoneEvent]:
    """The payloads of one key press at 20 ms intervals, end packet sent three times."""
    code = event_code(digit)
    steps = max(1, duration_ms // 20)
    packets = [
        TelephoneEvent(event=code, end=False, volume=volume, duration=160 * (i + 1))
        for i in range(steps - 1)
    ]
    end = TelephoneEvent(event=code, end=True, volume=volume, duration=160 * steps)
    return packets + [end, end, end]
