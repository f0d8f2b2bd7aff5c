"""RFC 4733 events: one digit per key press, whatever the network does to the packets."""

from __future__ import annotations

import random

import pytest
from switchboard.telephony.sip.dtmf import DtmfReceiver, TelephoneEvent, event_code, event_packets


def test_payload_round_trip():
    ev = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert bytes(ev) == b"\x0b\x8a\x03\x20"
    assert TelephoneEvent.parse(bytes(ev)) == ev
    assert ev.digit == "#"
    assert event_code("*") == 10 and event_code("d") == 15
    with pytest.raises(ValueError):
        event_code("x")


def _feed(rx: DtmfReceiver, packets: list[tuple[int, bytes]]) -> list[str]:
    out: list[str] = []
    for ts, payload in packets:
        out += rx.feed(ts, payload)
    return out


def test_each_event_reported_once_despite_three_end_packets():
    rx = DtmfReceiver()
    packets = [(1000, bytes(p)) for p in event_packets("5")]
    packets += [(3000, bytes(p)) for p in event_packets("#")]
    assert sum(1 for _, p in packets if TelephoneEvent.parse(p).end) == 6
    assert _feed(rx, packets) == ["5", "#"]


def test_same_digit_twice_is_two_events():
    rx = DtmfReceiver()
    packets = [(ts, bytes(p)) for ts in (1000, 2600) for p in event_packets("1")]
    assert _feed(rx, packets) == ["1", "1"]


def test_a_long_call_of_key_presses_keeps_its_memory_bounded():
    """Every press is reported once, and the set of finished events the receiver keeps
    (to drop their late end packets) stays small however many presses a call has."""
    rx = DtmfReceiver()
    presses = [(1000 + 1600 * i, bytes(p)) for i in range(500) for p in event_packets("9")]
    assert _feed(rx, presses) == ["9"] * 500
    assert len(rx._reported) <= 64


def test_lost_end_packets_reported_when_the_next_event_starts():
    rx = DtmfReceiver()
    first = [(1000, bytes(p)) for p in event_packets("7") if not p.end]
    second = [(2000, bytes(p)) for p in event_packets("8")]
    assert _feed(rx, first + second) == ["7", "8"]


def test_reordered_and_duplicated_packets():
    rng = random.Random(4)
    rx = DtmfReceiver()
    packets = [(1000, bytes(p)) for p in event_packets("9", 200)]
    packets = packets + packets[:3]
    rng.shuffle(packets)
    late_end_first = _feed(rx, packets)
    assert late_end_first == ["9"]


def test_bad_payloads_are_counted_not_raised():
    rx = DtmfReceiver()
    assert rx.feed(1, b"\x01") == []
    assert rx.feed(2, bytes(TelephoneEvent(event=16, end=True, volume=0, duration=160))) == []
    assert rx.bad == 1
