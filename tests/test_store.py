"""The call store on real SQLite files: round trips, live durability, SIGKILL and recovery,
concurrency, and a write path that never stalls the event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from switchboard.pipeline.events import (
    BotReply,
    Event,
    IntentDetected,
    KnowledgeHits,
    Passage,
    TranscriptFinal,
)
from switchboard.pipeline.store import CallStore
from switchboard.pipeline.store_schema import metadata

from switchboard.config import StoreOptions

#: A PostgreSQL database to run the store's tests on as well (its tables are dropped), e.g.
#: postgresql+psycopg://postgres@/sbtest?host=/tmp/pgsock&port=55432
PG_URL = os.environ.get("SWITCHBOARD_TEST_PG_URL")


def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/calls.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    """The database URL a test runs on: a SQLite file, and PostgreSQL when one is given."""
    if request.param == "sqlite":
        return url(tmp_path)
    if not PG_URL:
        pytest.skip("SWITCHBOARD_TEST_PG_URL not set: no PostgreSQL run")
    engine = sa.create_engine(PG_URL)
    metadata.drop_all(engine)
    engine.dispose()
    return PG_URL


def final(call_id: str, leg: str, t: float, text: str) -> TranscriptFinal:
    return TranscriptFinal(call_id=call_id, leg=leg, t_audio=t, latency_ms=120.0,
                           text=text, t_start=t - 1.0, utterance=int(t))


def heavy(call_id: str, i: int) -> KnowledgeHits:
    """An event with a real body (three passages), as the knowledge stage publishes."""
    passages = [Passage(id=f"p{k}", title="Refund policy", text="words " * 60, score=0.5,
                        source="abcd") for k in range(3)]
    return KnowledgeHits(call_id=call_id, leg="caller", t_audio=i * 0.02, latency_ms=30.0,
                         utterance=i, passages=passages)


# Stand-ins for the live call's events (same kinds and fields as pipeline/events.py), so
# these tests pin the store's reading of them without depending on the call's module.
@dataclass
class LegJoinedEv(Event):
    kind: ClassVar[str] = "leg_joined"
    role: str = ""
    peer: str = ""


@dataclass
class LegLeftEv(Event):
    kind: ClassVar[str] = "leg_left"
    role: str = ""
    reason: str = ""


@dataclass
class CallStateEv(Event):
    kind: ClassVar[str] = "call_state"
    state: str = ""
    reason: str = ""


@dataclass
class HandoffRequestedEv(Event):
    kind: ClassVar[str] = "handoff_requested"
    rule: str = ""
    detail: str = ""
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class HandoffUpdateEv(Event):
    kind: ClassVar[str] = "handoff"
    status: str = ""
    agent: str = ""
    detail: str = ""


def test_every_table_round_trips(db, tmp_path):
    store = CallStore(db, record_audio=True, audio_dir=tmp_path / "audio")
    store.begin("c1", "sip:alice@127.0.0.1:5062", caller="sip:alice@127.0.0.1:5062",
                at=1000.0)
    store.answered("c1", at=1001.0)
    store.leg_joined("c1", "caller", "caller", "sip:alice@127.0.0.1:5062", at=1000.0)
    store.leg_joined("c1", "bot", "bot", at=1001.0)
    store.append(final("c1", "caller", 2.0, "I want a refund"))
    store.append(IntentDetected(call_id="c1", leg="caller", t_audio=2.0, intent="refund",
                                text="I want a refund", candidates=[("refund", 0.9)]))
    store.append(BotReply(call_id="c1", leg="caller", t_audio=2.0, reply_id=1,
                          text="Sure, let me check.", intent="refund"))
    store.append(final("c1", "caller", 5.0, "I want a person"))
    n = store.request_handoff("c1", "asked_for_person",
                              {"transcript": "I want a refund", "intent": "refund",
                               "anger": 3.5}, detail="said 'a person'", at=1005.0)
    store.handoff_agent("c1", "sip:bob@127.0.0.1:5070")
    store.handoff_outcome("c1", "answered", at=1009.0)
    store.leg_joined("c1", "agent", "agent", "sip:bob@127.0.0.1:5070", at=1009.0)
    store.leg_left("c1", "bot", "handoff", at=1009.0)
    store.append(final("c1", "agent", 10.0, "Hello, Bob here"))
    store.request_callback("c1", "sip:alice@127.0.0.1:5062", {"why": "test"}, at=1010.0)
    wav = store.audio_path("c1", "caller")
    assert wav == tmp_path / "audio" / "c1" / "caller.wav" and wav.parent.is_dir()
    store.add_audio("c1", "caller", wav)
    store.end("c1", "completed", "hangup", summary={"turns": 3}, at=1020.0)
    store.close()

    again = CallStore(db)
    rec = again.get_call("c1")
    assert again.dropped == 0
    assert n == 0
    assert {k: rec[k] for k in ("channel", "caller", "started_at", "answered_at", "ended_at",
                                "status", "end_reason", "intent", "summary", "duration_s")} == {
        "channel": "sip", "caller": "sip:alice@127.0.0.1:5062", "started_at": 1000.0,
        "answered_at": 1001.0, "ended_at": 1020.0, "status": "completed",
        "end_reason": "hangup", "intent": "refund", "summary": {"turns": 3},
        "duration_s": 20.0}
    by_leg = {leg["leg_id"]: leg for leg in rec["legs"]}
    assert by_leg["bot"]["left_at"] == 1009.0 and by_leg["bot"]["end_reason"] == "handoff"
    # Legs still joined when the call ended leave with it.
    assert by_leg["caller"]["left_at"] == 1020.0 and by_leg["caller"]["end_reason"] == "hangup"
    assert by_leg["agent"]["peer"] == "sip:bob@127.0.0.1:5070"
    [handoff] = rec["handoffs"]
    assert handoff["reason"] == "asked_for_person" and handoff["outcome"] == "answered"
    assert handoff["agent"] == "sip:bob@127.0.0.1:5070" and handoff["answered_at"] == 1009.0
    assert handoff["context"]["anger"] == 3.5 and handoff["detail"] == "said 'a person'"
    assert rec["callbacks"][0]["state"] == "pending"
    assert rec["audio"][0]["path"] == str(wav)
    assert [(t["speaker"], t["text"]) for t in rec["transcript"]] == [
        ("caller", "I want a refund"), ("bot", "Sure, let me check."),
        ("caller", "I want a person"), ("agent", "Hello, Bob here")]
    assert rec["event_count"] == 5
    intents = again.events("c1", kinds=["intent"])
    assert intents[0]["candidates"] == [["refund", 0.9]] and intents[0]["seq"] == 1
    assert [e["seq"] for e in again.events("c1")] == [0, 1, 2, 3, 4]

    again.callback_state("c1", "done")
    assert again.list_callbacks() == []
    assert again.list_callbacks(state="done")[0]["number"] == "sip:alice@127.0.0.1:5062"
    stats = again.stats()
    assert stats["calls"] == 1 and stats["by_end_reason"] == {"hangup": 1}
    assert stats["handoffs"] == {"answered": 1} and stats["callbacks"] == {"done": 1}
    assert stats["mean_duration_s"] == 20.0
    again.close()


def test_list_calls_pages_newest_first(db):
    store = CallStore(db)
    for i, call_id in enumerate(["old", "mid", "new"]):
        store.begin(call_id, "file:x.wav", at=100.0 + i)
    store.end("mid", "rejected", "busy", at=105.0)
    assert [c["call_id"] for c in store.list_calls(limit=2)] == ["new", "mid"]
    assert [c["call_id"] for c in store.list_calls(before=101.0)] == ["old"]
    assert [c["call_id"] for c in store.list_calls(status="live")] == ["new", "old"]
    assert [c["call_id"] for c in store.list_calls(status=["rejected"])] == ["mid"]
    assert "summary" not in store.list_calls()[0]
    stats = store.stats(since=101.0)
    assert stats["by_status"] == {"live": 1, "rejected": 1} and stats["live"] == 1
    store.close()


def test_legs_handoffs_and_intent_come_from_the_events(db):
    store = CallStore(db)
    store.begin("c2", "sip:sip:carol@127.0.0.1:5062")
    for event in [
        CallStateEv(call_id="c2", leg="call", t_audio=0.0, state="setup"),
        LegJoinedEv(call_id="c2", leg="caller", t_audio=0.0, role="caller",
                    peer="sip:carol@127.0.0.1:5062"),
        CallStateEv(call_id="c2", leg="call", t_audio=0.0, state="bot", reason="answered"),
        IntentDetected(call_id="c2", leg="caller", t_audio=1.0, intent="out_of_scope"),
        IntentDetected(call_id="c2", leg="caller", t_audio=2.0, intent="billing"),
        IntentDetected(call_id="c2", leg="caller", t_audio=3.0, intent="refund"),
        HandoffRequestedEv(call_id="c2", leg="caller", t_audio=4.0, rule="dtmf_0",
                           context={"intent": "billing"}),
        HandoffUpdateEv(call_id="c2", leg="caller", t_audio=5.0, status="ringing",
                        agent="sip:bob@x"),
        HandoffUpdateEv(call_id="c2", leg="caller", t_audio=20.0, status="no_answer",
                        agent="sip:bob@x"),
        HandoffUpdateEv(call_id="c2", leg="caller", t_audio=50.0,
                        status="callback_requested"),
        LegLeftEv(call_id="c2", leg="caller", t_audio=55.0, role="caller", reason="hangup"),
    ]:
        store.append(event)
    store.end("c2", "completed", "hangup")
    rec = store.get_call("c2")
    assert rec["intent"] == "billing"  # the first one recognised
    assert rec["caller"] == "sip:carol@127.0.0.1:5062" and rec["channel"] == "sip"
    assert rec["answered_at"] is not None
    assert rec["legs"][0]["role"] == "caller" and rec["legs"][0]["end_reason"] == "hangup"
    [handoff] = rec["handoffs"]
    assert (handoff["reason"], handoff["agent"], handoff["outcome"]) == (
        "dtmf_0", "sip:bob@x", "callback_requested")
    assert handoff["context"] == {"intent": "billing"} and handoff["answered_at"] is None
    store.close()


def test_events_are_readable_elsewhere_while_the_call_is_live(db):
    """The supervisor board (another store on the same file) sees a live call's events
    within the commit interval, with no flush and no end."""
    writer = CallStore(db, commit_interval_s=0.2)
    board = CallStore(db)
    writer.begin("live1", "sip:dave@127.0.0.1:5062")
    for i in range(5):
        writer.append(final("live1", "caller", float(i + 1), f"sentence {i}"))
    deadline = time.monotonic() + 3.0
    rec = None
    while time.monotonic() < deadline:
        rec = board.get_call("live1")
        if rec is not None and rec["event_count"] == 5:
            break
        time.sleep(0.05)
    assert rec is not None and rec["event_count"] == 5 and rec["status"] == "live"
    assert [c["call_id"] for c in board.list_calls(status="live")] == ["live1"]
    assert [t["text"] for t in board.transcript("live1")][-1] == "sentence 4"
    writer.close()
    board.close()


CHILD = textwrap.dedent("""
    import sys, time
    from switchboard.pipeline.events import TranscriptFinal
    from switchboard.pipeline.store import CallStore

    store = CallStore(sys.argv[1], commit_interval_s=0.2)
    store.begin("done", "sip:erin@127.0.0.1:5062")
    store.end("done", "completed", "hangup")
    store.begin("quiet", "sip:ida@127.0.0.1:5062", at=500.0)
    store.begin("mid", "sip:frank@127.0.0.1:5062")
    store.leg_joined("mid", "caller", "caller", "sip:frank@127.0.0.1:5062")
    store.request_handoff("mid", "anger", {"anger": 8.1})
    for i in range(7):
        store.append(TranscriptFinal(call_id="mid", leg="caller", t_audio=float(i + 1),
                                     text=f"said {i}"))
    time.sleep(1.0)  # no flush, no close: only the writer's own commits save these
    print("ready", flush=True)
    while True:
        store.append(TranscriptFinal(call_id="mid", leg="caller", t_audio=99.0,
                                     text="after ready"))
        time.sleep(0.01)
""")


def test_sigkill_mid_call_then_recover(db):
    child = subprocess.Popen([sys.executable, "-c", CHILD, db],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    store = CallStore(db)
    assert store.get_call("mid")["status"] == "live"
    assert store.recover() == 2
    assert store.get_call("quiet")["ended_at"] == 500.0  # nothing after its start
    rec = store.get_call("mid")
    assert rec["status"] == "interrupted" and rec["end_reason"] == "interrupted"
    assert [t["text"] for t in rec["transcript"]][:7] == [f"said {i}" for i in range(7)]
    assert rec["ended_at"] >= rec["started_at"] + 7.0  # the last moment the record shows
    assert rec["legs"][0]["end_reason"] == "interrupted"
    assert rec["handoffs"][0]["outcome"] == "interrupted"
    assert store.get_call("done")["status"] == "completed"  # ended calls are left alone
    assert store.recover() == 0
    store.close()


def test_recover_leaves_this_processes_live_calls_alone(db):
    store = CallStore(db)
    store.begin("mine", "file:a.wav")
    assert store.recover() == 0
    assert store.get_call("mine")["status"] == "live"
    store.close()


def test_record_survives_a_failed_call(db):
    store = CallStore(db)
    store.begin("c1", "x.wav")
    ev = TranscriptFinal(call_id="c1", leg="caller", t_audio=1.0, text="hello")
    store.finish("c1", [ev], "failed", "RuntimeError: boom")
    store.close()
    again = CallStore(db)
    rec = again.call("c1")
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: boom"
    assert rec["end_reason"] == "failed" and rec["channel"] == "file"
    assert rec["events"] == 1
    again.close()


def test_finish_after_live_appends_and_end_keeps_one_record(db):
    """The session's ``finish(history)`` after the bus fed ``append``: no event twice, and
    the end that came first stands (a call ends once)."""
    store = CallStore(db)
    store.begin("c3", "sip:gina@127.0.0.1:5062")
    history = [final("c3", "caller", float(i + 1), f"t{i}") for i in range(3)]
    for event in history[:2]:
        store.append(event)
    store.end("c3", "completed", "hangup")
    store.finish("c3", history, "failed", "RuntimeError: late", {"transcript": "t0 t1 t2"})
    rec = store.call("c3")
    assert rec["events"] == 3 and [e["seq"] for e in store.events("c3")] == [0, 1, 2]
    assert (rec["status"], rec["end_reason"]) == ("completed", "hangup")
    assert rec["summary"] == {"transcript": "t0 t1 t2"}  # filled in, as it was missing
    store.close()
    store.finish("c3", history, "failed")  # a closed store: logged, never raised


def test_finish_records_the_end_even_with_a_broken_event(db):
    store = CallStore(db)
    store.begin("c4", "x.wav")
    good = final("c4", "caller", 1.0, "hello")
    store.finish("c4", [good, object(), good], "failed", "ValueError: bad frame")  # type: ignore[list-item]
    rec = store.call("c4")
    assert (rec["status"], rec["error"], rec["events"]) == ("failed", "ValueError: bad frame", 2)
    store.close()


def test_two_calls_written_from_the_loop_at_once(db):
    store = CallStore(db, commit_interval_s=0.05)

    async def call(call_id: str, n: int) -> None:
        store.begin(call_id, f"sip:{call_id}@127.0.0.1:5062")
        for i in range(n):
            store.append(final(call_id, "caller", float(i + 1), f"{call_id} {i}"))
            await asyncio.sleep(0.001)
        store.end(call_id, "completed", "hangup")

    async def both() -> None:
        await asyncio.gather(call("a", 150), call("b", 120))
        await store.aflush()

    asyncio.run(both())
    for call_id, n in (("a", 150), ("b", 120)):
        rec = store.get_call(call_id)
        assert rec["status"] == "completed" and rec["event_count"] == n
        assert [t["text"] for t in rec["transcript"]] == [f"{call_id} {i}" for i in range(n)]
        assert [e["seq"] for e in store.events(call_id)] == list(range(n))  # numbered per call
    assert store.stats()["by_status"] == {"completed": 2}
    assert store.dropped == 0
    store.close()


def test_a_long_queue_is_written_in_bounded_transactions(monkeypatch):
    """A backlog (a database that was slow for a while) is committed MAX_BATCH operations
    at a time, so no transaction, or its retry one by one, grows without bound."""
    from switchboard.pipeline import store_writer

    monkeypatch.setattr(store_writer, "MAX_BATCH", 3)
    writer = store_writer.StoreWriter(sa.create_engine("sqlite://"), commit_interval_s=30.0,
                                      lock=threading.Lock())
    applied: list[int] = []
    for i in range(7):
        writer.submit(lambda conn, i=i: applied.append(i))
    assert writer.flush(10)
    assert applied == list(range(7)) and writer.commits == 3  # 3 + 3 + 1
    assert writer.close(5)


def test_writing_10k_events_does_not_stall_the_loop(db):
    """A heartbeat on the loop keeps ticking while a call's 10k events are stored; a write
    path that touched the database on the loop would stall it for seconds."""
    store = CallStore(db)
    store.begin("big", "sip:henry@127.0.0.1:5062")
    events = [heavy("big", i) for i in range(10_000)]
    gaps: list[float] = []

    async def heartbeat(stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def main() -> float:
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop))
        await asyncio.sleep(0.05)
        in_append = 0.0
        for start in range(0, len(events), 2500):
            t0 = time.perf_counter()
            for event in events[start:start + 2500]:  # bursts, as a busy bus publishes
                store.append(event)
            in_append += time.perf_counter() - t0
            await asyncio.sleep(0)
        store.end("big", "completed", "hangup")
        await store.aflush()
        stop.set()
        await beat
        return in_append

    in_append = asyncio.run(main())
    assert store.get_call("big")["event_count"] == 10_000
    # Queuing costs microseconds an event; a write on the loop costs a transaction each
    # (about 0.3 ms on SQLite WAL, far more on a network database).
    assert in_append < 0.5, f"appending 10k events held the loop {in_append:.2f} s"

    assert max(gaps) < 0.5, f"the loop stalled {max(gaps):.3f} s"
    store.close()


def test_in_memory_store_is_shared_across_threads():
    store = CallStore("sqlite:///:memory:", commit_interval_s=0.01)
    store.begin("m1", "file:x.wav")
    worker = threading.Thread(target=lambda: store.append(final("m1", "caller", 1.0, "hi")))
    worker.start()
    worker.join()
    assert store.get_call("m1")["transcript"][0]["text"] == "hi"
    store.close()


def test_options_and_audio_off_by_default(tmp_path):
    store = CallStore.from_options(StoreOptions(url=url(tmp_path), audio_dir=str(tmp_path)))
    assert store.audio_path("c1", "caller") is None
    store.close()


def test_a_database_of_the_first_store_opens_with_its_records(tmp_path):
    db = sqlite3.connect(tmp_path / "calls.db")
    db.executescript("""
        CREATE TABLE calls (call_id TEXT PRIMARY KEY, source TEXT NOT NULL,
            started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL, error TEXT,
            summary TEXT);
        CREATE TABLE events (call_id TEXT NOT NULL REFERENCES calls(call_id),
            seq INTEGER NOT NULL, kind TEXT NOT NULL, leg TEXT NOT NULL,
            t_audio REAL NOT NULL, latency_ms REAL, body TEXT NOT NULL,
            PRIMARY KEY (call_id, seq));
        INSERT INTO calls VALUES ('old', 'a.wav', 1.0, 2.0, 'completed', NULL, '{}');
    """)
    db.close()
    store = CallStore(url(tmp_path))
    assert store.get_call("old")["status"] == "completed"
    store.begin("new", "b.wav")
    store.end("new", "completed")
    assert store.get_call("new")["channel"] == "file"
    store.close()


@pytest.mark.parametrize("target", ["sqlite:///relative/dir/calls.db"])
def test_sqlite_path_is_created(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    store = CallStore(target)
    store.close()
    assert (tmp_path / "relative" / "dir" / "calls.db").exists()


def test_one_failing_write_loses_only_itself(tmp_path):
    """A write that fails inside a batch (a constraint, a driver error) is retried alone
    and dropped, counted; the batch's other writes, before and after it, are kept."""
    store = CallStore(url(tmp_path), commit_interval_s=5.0)  # one batch: flush ends it
    try:
        store.begin("c1", "test")
        for t in (1.0, 2.0):
            store.append(final("c1", "caller", t, f"turn {t:g}"))

        def broken(conn):
            raise RuntimeError("the database refused this one")

        store._submit(broken)
        for t in (3.0, 4.0):
            store.append(final("c1", "caller", t, f"turn {t:g}"))
        assert store.flush(10)
        texts = [e["text"] for e in store.events("c1", kinds=["transcript_final"])]
        assert texts == ["turn 1", "turn 2", "turn 3", "turn 4"]
        assert store.dropped == 1
    finally:
        store.close()
