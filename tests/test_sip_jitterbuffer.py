"""The jitter buffer: reordering, late and duplicate packets, gaps, wrap-around, underrun."""

from __future__ import annotations

from switchboard.telephony.sip.jitterbuffer import LOST, JitterBuffer


def _drain(jb: JitterBuffer, n: int) -> list:
    return [jb.pop() for _ in range(n)]


def test_reorders_within_prefetch():
    jb = JitterBuffer(prefetch=3)
    for seq in (11, 10, 12, 13):
        jb.put(seq, bytes([seq]))
    assert _drain(jb, 5) == [b"\x0a", b"\x0b", b"\x0c", b"\x0d", None]


def test_waits_for_prefetch_before_playing():
    jb = JitterBuffer(prefetch=3)
    jb.put(1, b"a")
    jb.put(2, b"b")
    assert jb.pop() is None
    jb.put(3, b"c")
    assert _drain(jb, 3) == [b"a", b"b", b"c"]


def test_gap_is_lost_and_late_packet_dropped():
    jb = JitterBuffer(prefetch=1)
    jb.put(1, b"a")
    jb.put(3, b"c")
    assert _drain(jb, 3) == [b"a", LOST, b"c"]
    assert jb.put(2, b"b") is False  # its slot was already concealed
    assert jb.stats.late == 1 and jb.stats.lost == 1


def test_duplicates_dropped():
    jb = JitterBuffer(prefetch=2)
    assert jb.put(5, b"x")
    assert not jb.put(5, b"x")
    assert jb.stats.duplicate == 1


def test_sequence_wraps_around():
    jb = JitterBuffer(prefetch=1)
    for seq in (65534, 65535, 0, 1):
        jb.put(seq, seq.to_bytes(2, "big"))
    assert [p for p in _drain(jb, 4)] == [
        (65534).to_bytes(2, "big"),
        (65535).to_bytes(2, "big"),
        (0).to_bytes(2, "big"),
        (1).to_bytes(2, "big"),
    ]


def test_underrun_does_not_advance():
    jb = JitterBuffer(prefetch=1)
    jb.put(1, b"a")
    assert _drain(jb, 4) == [b"a", None, None, None]
    jb.put(2, b"b")  # the sender paused: nothing was lost
    assert jb.pop() == b"b" and jb.stats.lost == 0


def test_capacity_drops_oldest_and_reset_forgets():
    jb = JitterBuffer(prefetch=1, capacity=5)
    for seq in range(20):
        jb.put(seq, bytes([seq]))
    assert len(jb) == 5 and jb.stats.overflow == 15
    assert jb.pop() == bytes([15])
    jb.reset()
    assert len(jb) == 0 and jb.pop() is None
    jb.put(40000, b"z")
    assert jb.pop() == b"z"


def test_a_packet_reordered_across_the_wrap_plays_in_order():
    jb = JitterBuffer(prefetch=3)
    for seq in (65534, 0, 65535):  # 65535 arrives after the wrap to 0
        jb.put(seq, seq.to_bytes(2, "big"))
    assert _drain(jb, 3) == [(s).to_bytes(2, "big") for s in (65534, 65535, 0)]


def test_a_restarted_sender_is_followed_not_waited_for():
    """A sequence jump of thousands is a new sender (a phone restarting its stream): the
    buffer resynchronises instead of playing the missing thousands as lost."""
    jb = JitterBuffer(prefetch=1)
    for seq in (100, 101):
        jb.put(seq, b"old")
    assert _drain(jb, 2) == [b"old", b"old"]
    jb.put(20000, b"new")
    assert jb.pop() == b"new" and jb.stats.lost == 0


def test_after_an_underrun_the_buffer_refills_before_playing_again():
    jb = JitterBuffer(prefetch=2)
    for seq in (1, 2):
        jb.put(seq, bytes([seq]))
    assert _drain(jb, 3) == [b"\x01", b"\x02", None]
    jb.put(3, b"\x03")
    assert jb.pop() is None  # one packet is not the prefetch depth yet
    jb.put(4, b"\x04")
    assert _drain(jb, 2) == [b"\x03", b"\x04"]
