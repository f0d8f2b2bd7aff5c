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


def _steady(jb: JitterBuffer, pulls: int, seq: int) -> int:
    """Packets arriving exactly one per pull; the next sequence number."""
    for _ in range(pulls):
        jb.put(seq, bytes([seq % 256]))
        jb.pop()
        seq += 1
    return seq


def test_an_adaptive_buffer_on_a_steady_stream_sheds_its_spare_packets():
    """Every packet held is 20 ms more before the bot can answer: on a stream that never
    runs it low, the depth comes down to min_prefetch, one packet (shed by the caller on
    quiet audio) per window."""
    jb = JitterBuffer(prefetch=3, min_prefetch=1, window=50)
    fixed = JitterBuffer(prefetch=3, window=50)
    for buffer in (jb, fixed):
        for seq in range(3):
            buffer.put(seq, b"x")
        _steady(buffer, 200, 3)
    assert jb.prefetch == 1 and jb.shed == 2 and jb.stats.shallowed == 2
    assert fixed.prefetch == 3 and fixed.shed == 0 and fixed.stats.shallowed == 0


def test_a_window_that_ran_the_buffer_dry_keeps_its_depth():
    jb = JitterBuffer(prefetch=2, min_prefetch=1, window=50)
    for seq in range(2):
        jb.put(seq, b"x")
    seq = _steady(jb, 20, 2)
    jb.pop()
    assert jb.pop() is not None and len(jb) == 0  # the last packet left: no spare one
    jb.put(seq, b"x")
    jb.put(seq + 1, b"x")
    _steady(jb, 28, seq + 2)  # the rest of the window
    assert jb.prefetch == 2 and jb.shed == 0


def test_a_late_packet_deepens_an_adaptive_buffer_but_a_senders_pause_does_not():
    jb = JitterBuffer(prefetch=1, min_prefetch=1, max_prefetch=3, window=1000)
    seq = _steady(jb, 10, 0)
    assert jb.pop() is None  # the next packet is late: one pull with nothing to play
    jb.put(seq, b"late")
    jb.put(seq + 1, b"next")
    assert jb.pop() == b"late" and jb.prefetch == 2 and jb.stats.deepened == 1
    assert jb.pop() == b"next"
    # A pause in sending (silence suppression): many pulls with nothing, then the stream
    # goes on; the depth stays.
    assert [jb.pop() for _ in range(20)] == [None] * 20
    jb.put(seq + 2, b"a")
    jb.put(seq + 3, b"b")
    assert jb.pop() == b"a" and jb.prefetch == 2 and jb.stats.deepened == 1


def test_late_packet_after_late_packet_deepens_it_no_further_than_max_prefetch():
    jb = JitterBuffer(prefetch=1, min_prefetch=1, max_prefetch=3, window=1000)
    seq = 0
    for _ in range(5):
        for _ in range(jb.prefetch):
            jb.put(seq, b"x")
            seq += 1
        while jb.pop() is not None:  # plays them, then one pull finds nothing
            pass
    assert jb.prefetch == 3 and jb.stats.deepened == 2
