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


def test_a_cut_reply_counts_every_frame_heard_across_its_sentences():
    src = PlayoutSource()
    src.extend(frame(1) * 2, "1")
    src.extend(frame(2) * 2, "1")  # the reply's second sentence, synthesised later
    for _ in range(3):
        src.pull()
    cut = src.flush()
    assert cut[0].total == 4 and cut[0].played == 3  # what the barge-in record says was heard


def _two_listener_call():
    r = Routing()
    for node, role in (("caller", Role.CALLER), ("agent", Role.AGENT), ("bot", Role.BOT)):
        r.add(node, role)
    m = Mixer(r)
    bot = m.add_source("bot", PlayoutSource())
    return r, m, bot


def test_a_broken_listener_edge_does_not_stop_the_others():
    r, m, bot = _two_listener_call()
    r.connect("caller", "bot")
    r.connect("agent", "bot")
    got = []

    def broken(pcm):
        raise OSError("peer vanished")

    m.add_sink("caller", broken)
    m.add_sink("agent", got.append)
    bot.play(frame(4) * 2, "1")
    m.tick()
    m.tick()
    assert got == [frame(4), frame(4)]


def test_sources_advance_whoever_hears_them_so_a_new_route_never_replays():
    r, m, bot = _two_listener_call()
    got = []
    m.add_sink("agent", got.append)
    bot.play(frame(1) + frame(2) + frame(3), "1")
    m.tick()  # nobody hears the bot yet: its first frame still goes by
    r.connect("agent", "bot")
    m.tick()
    assert got == [SILENCE, frame(2)]


def test_a_mixer_far_behind_its_schedule_resynchronises_instead_of_bursting(monkeypatch):
    """One tick stalls a second (a blocked loop): the mixer does not then send 50 frames
    at once to catch up, it carries on at 20 ms from the stall."""
    import asyncio
    import time
    from types import SimpleNamespace

    from switchboard.telephony import mixer as mixer_module

    r, m, _ = _two_listener_call()
    offset = [0.0]
    # The mixer's clock only (the event loop keeps the real one).
    monkeypatch.setattr(mixer_module, "time",
                        SimpleNamespace(monotonic=lambda: time.monotonic() + offset[0]))
    ticks = []

    def stall_once(pcm):
        ticks.append(pcm)
        if len(ticks) == 2:
            offset[0] += 1.0  # the clock jumps as if this send took a second

    m.add_sink("agent", stall_once)

    async def run_for(seconds):
        stop = asyncio.Event()
        task = asyncio.create_task(m.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task

    asyncio.run(run_for(0.2))
    assert 2 <= len(ticks) < 30, len(ticks)  # paced: ~11 in 0.2 s; a burst adds 50
