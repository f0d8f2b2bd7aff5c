import numpy as np
from switchboard.telephony.edge import FRAME_BYTES, SILENCE
from switchboard.telephony.mixer import LIVE_BACKLOG, LiveSource, Mixer, PlayoutSource, mix
from switchboard.telephony.routing import Role, Routing


def frame(value: int) -> bytes:
    return np.full(FRAME_BYTES // 2, value, "<i2").tobytes()


def test_mix_sums_with_saturation():
    assert mix([]) == SILENCE
    out = np.frombuffer(mix([frame(1000), frame(2000)]), "<i2")
    assert (out == 3000).all()
    out = np.frombuffer(mix([frame(30000), frame(30000)]), "<i2")
    assert (out == 32767).all()


def test_each_listener_gets_only_what_it_hears():
    r = Routing()
    r.add("caller", Role.CALLER)
    r.add("agent", Role.AGENT)
    r.add("bot", Role.BOT)
    r.connect("caller", "bot")
    r.connect("agent", "caller")
    m = Mixer(r)
    caller, bot = LiveSource(), PlayoutSource()
    m.add_source("caller", caller)
    m.add_source("bot", bot)
    got: dict[str, list[bytes]] = {"caller": [], "agent": []}
    m.add_sink("caller", got["caller"].append)
    m.add_sink("agent", got["agent"].append)
    caller.push(frame(7))
    bot.play(frame(5) * 2, "1")
    m.tick()
    m.tick()
    assert got["caller"] == [frame(5), frame(5)]
    assert got["agent"] == [frame(7), SILENCE]


def test_playout_reports_start_and_flush_cuts_at_the_next_tick():
    src = PlayoutSource()
    started = []
    src.on_start = lambda tag, t: started.append(tag)
    src.play(frame(1) * 3, "1")
    src.play(frame(2), "2")
    assert src.pull() == frame(1)
    assert started == ["1"]
    cut = src.flush()
    assert [p.tag for p in cut] == ["1", "2"] and cut[0].played == 1
    assert src.pull() == SILENCE and not src.playing


def test_a_reply_grows_sentence_by_sentence_in_order():
    src = PlayoutSource()
    src.extend(frame(1), "1")
    src.extend(frame(2), "1")
    src.extend(frame(3), "2")
    assert [src.pull() for _ in range(4)] == [frame(1), frame(2), frame(3), SILENCE]


def test_a_live_party_ahead_of_the_mixer_is_not_heard_late():
    src = LiveSource()
    for v in range(10):
        src.push(frame(v))
    # Only the newest few frames are kept: the backlog is dropped, not played out late.
    assert src.pull() == frame(10 - LIVE_BACKLOG)


def test_loop_source_plays_forever_between_announcements():
    src = PlayoutSource(loop_audio=frame(3) * 2)
    assert [src.pull() for _ in range(3)] == [frame(3)] * 3
    src.play(frame(9), "hello")
    assert src.pull() == frame(9)
    assert src.pull() == frame(3)
