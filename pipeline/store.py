"""The call record store: every call, its legs, events, handoffs and outcome.

SQLAlchemy Core over any database URL: SQLite by default (``sqlite:///path``,
``sqlite:///:memory:`` for tests), PostgreSQL by configuration. The record is written
while the call goes on, not only at its end: each published event is appended (subscribe
:meth:`CallStore.append` to the call's bus) and committed within ``commit_interval_s``
by the store's writer thread (pipeline/store_writer.py), so a server killed mid-call
leaves the call's record up to that moment; :meth:`CallStore.recover` at the next start
marks such calls "interrupted". Writes never block the caller (the event loop): they
queue. Reads flush this store's queue first, so a store always reads its own writes.

Legs, handoffs and the call's intent are recorded from the events themselves
(``leg_joined``, ``leg_left``, ``handoff_requested``, ``handoff``, ``intent``), or by the
explicit methods for code that has no event to publish: use one or the other per call.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool
from switchboard.pipeline import store_read
from switchboard.pipeline.events import Event
from switchboard.pipeline.redact import redactor
from switchboard.pipeline.store_schema import (
    CHILDREN,
    audio,
    callbacks,
    calls,
    create_schema,
    events,
    handoffs,
    legs,
)
from switchboard.pipeline.store_writer import EventOp, Op, StoreWriter, dumps

from switchboard.config import PrivacyOptions, StoreOptions

log = logging.getLogger(__name__)

LIVE = "live"
INTERRUPTED = "interrupted"
#: Call states (telephony/call.py) in which someone has answered the caller.
ANSWERED_STATES = ("bot", "agent")
#: Calls whose counters this process remembers (events keep numbering after the call ended).
_REMEMBERED_CALLS = 10_000
_URI_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]+):")


@dataclass
class _CallState:
    seq: int = 0  # next event number
    handoffs: int = 0
    callbacks: int = 0


def make_engine(url: str) -> tuple[sa.Engine, bool]:
    """An engine for ``url``, and whether it is one shared connection (in-memory SQLite).

    SQLite gets its own connection settings (WAL, so readers in other processes never
    block the writer; foreign keys enforced, as PostgreSQL does); the SQL is the same.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True), False
    database = parsed.database or ""
    memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if memory:
        # One connection for every thread, or each thread would see its own empty database.
        engine = sa.create_engine(parsed, poolclass=StaticPool,
                                  connect_args={"check_same_thread": False})
    else:
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed.set(database=str(path)),
                                  connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_settings(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            # Committed data survives a killed process in WAL mode with NORMAL; only a power
            # cut can lose the last commits, for far fewer fsyncs.
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine, memory


def _channel_of(source: str) -> str:
    match = _URI_SCHEME.match(source)
    return match.group(1) if match else "file"


class CallStore:
    """Every call's record, in the database at ``url``.

    Thread-safe; every write method returns at once (the write is queued), so they may be
    called from the event loop. Read methods block on the database: from a coroutine, run
    them with ``asyncio.to_thread``. ``close()`` commits what is queued.
    """

    def __init__(self, url: str, *, commit_interval_s: float = 0.25,
                 record_audio: bool = False, audio_dir: str | Path | None = None,
                 redact: Callable[[Any], Any] | None = None) -> None:
        self.url = url
        # Masks long digit strings (cards, accounts) in what is written: events, handoff
        # and callback contexts, the summary (pipeline/redact.py; None writes all).
        self.redact = redact
        self.record_audio = record_audio
        self.audio_dir = Path(audio_dir).expanduser() if audio_dir is not None else None
        self._engine, shared = make_engine(url)
        # In-memory SQLite is one connection: readers and the writer take turns on it.
        self._db_lock: AbstractContextManager[Any] = (
            threading.RLock() if shared else nullcontext())
        create_schema(self._engine)
        self._state_lock = threading.Lock()
        self._calls: OrderedDict[str, _CallState] = OrderedDict()
        self._live: set[str] = set()
        self._closed = False
        self._writer = StoreWriter(self._engine, commit_interval_s, self._db_lock, redact)
        atexit.register(self.close)

    @classmethod
    def from_options(cls, options: StoreOptions,
                     privacy: PrivacyOptions | None = None) -> CallStore:
        """The store ``settings.store`` describes, masking as ``settings.privacy`` says
        (its defaults when not given: digits are masked unless turned off)."""
        privacy = privacy or PrivacyOptions()
        return cls(options.url, commit_interval_s=options.commit_interval_s,
                   record_audio=options.record_audio, audio_dir=options.audio_dir,
                   redact=redactor(privacy.redact_digits, privacy.min_digits))

    # -- writing (queued; never blocks) -------------------------------------------------

    def begin(self, call_id: str, source: str, *, channel: str | None = None,
              caller: str | None = None, at: float | None = None) -> None:
        """A call started: ``source`` is where it came from (a peer URI, a file path).

        Beginning an id again starts its record afresh (a re-run simulation).
        """
        at = time.time() if at is None else at
        row = {"call_id": call_id, "source": source, "channel": channel or _channel_of(source),
               "caller": caller, "started_at": at, "status": LIVE}
        with self._state_lock:
            self._calls[call_id] = _CallState()
            self._calls.move_to_end(call_id)
            while len(self._calls) > _REMEMBERED_CALLS:
                self._calls.popitem(last=False)
            self._live.add(call_id)

        def op(conn: sa.Connection) -> None:
            if conn.execute(sa.select(calls.c.call_id)
                            .where(calls.c.call_id == call_id)).first() is not None:
                log.warning("call %s begun again: its earlier record is replaced", call_id)
                for table in CHILDREN:
                    conn.execute(sa.delete(table).where(table.c.call_id == call_id))
                conn.execute(sa.delete(calls).where(calls.c.call_id == call_id))
            conn.execute(sa.insert(calls).values(**row))

        self._submit(op)

    def append(self, event: Event, call_id: str | None = None) -> None:
        """Record one published event (a bus subscriber: ``bus.subscribe(store.append)``)."""
        call_id = call_id or event.call_id
        with self._state_lock:
            state = self._calls.get(call_id)
            if state is None:
                log.warning("event %s for call %s, which this store did not begin: dropped",
                            event.kind, call_id)
                return
            seq = state.seq
            state.seq += 1
        self._submit(EventOp(call_id, seq, event))
        self._project(call_id, event)

    def answered(self, call_id: str, at: float | None = None) -> None:
        """The call was answered (by the bot or a person)."""
        at = time.time() if at is None else at
        self._submit(lambda conn: conn.execute(
            sa.update(calls).where(calls.c.call_id == call_id, calls.c.answered_at.is_(None))
            .values(answered_at=at)))

    def set_intent(self, call_id: str, intent: str) -> None:
        """What the call is about (else the first recognised intent event sets it)."""
        self._submit(lambda conn: conn.execute(
            sa.update(calls).where(calls.c.call_id == call_id).values(intent=intent)))

    def leg_joined(self, call_id: str, leg: str, role: str, peer: str | None = None,
                   at: float | None = None) -> None:
        """A party joined: ``leg`` its id in the call, ``role`` caller/bot/agent/supervisor."""
        at = time.time() if at is None else at

        def op(conn: sa.Connection) -> None:
            where = (legs.c.call_id == call_id, legs.c.leg_id == leg)
            if conn.execute(sa.select(legs.c.leg_id).where(*where)).first() is None:
                conn.execute(sa.insert(legs).values(call_id=call_id, leg_id=leg, role=role,
                                                    peer=peer, joined_at=at))
            else:  # rejoined (an agent's phone reconnecting): the leg is open again
                conn.execute(sa.update(legs).where(*where).values(
                    role=role, peer=peer, left_at=None, end_reason=None))

        self._submit(op)

    def leg_left(self, call_id: str, leg: str, reason: str | None = None,
                 at: float | None = None) -> None:
        """A party left the call."""
        at = time.time() if at is None else at
        self._submit(lambda conn: conn.execute(
            sa.update(legs).where(legs.c.call_id == call_id, legs.c.leg_id == leg,
                                  legs.c.left_at.is_(None))
            .values(left_at=at, end_reason=reason)))

    def request_handoff(self, call_id: str, reason: str, context: dict[str, Any] | None = None,
                        *, detail: str | None = None, at: float | None = None) -> int:
        """The bot hands the caller to a person; returns the handoff's number in the call.

        ``reason``: why ("asked_for_person", "dtmf_0", "not_understood", "anger");
        ``context``: what the agent gets (transcript so far, intent, anger).
        """
        at = time.time() if at is None else at
        seq = self._next(call_id, "handoffs")
        body = dumps(self._masked(context or {}))
        self._submit(lambda conn: conn.execute(sa.insert(handoffs).values(
            call_id=call_id, seq=seq, requested_at=at, reason=reason, detail=detail,
            context=body)))
        return seq

    def handoff_agent(self, call_id: str, agent: str, handoff: int | None = None) -> None:
        """An agent is being tried for the handoff (the latest unless ``handoff`` says)."""
        seq = self._which(call_id, "handoffs", handoff)
        self._submit(lambda conn: conn.execute(
            sa.update(handoffs).where(handoffs.c.call_id == call_id, handoffs.c.seq == seq)
            .values(agent=agent)))

    def handoff_outcome(self, call_id: str, outcome: str, *, agent: str | None = None,
                        at: float | None = None, handoff: int | None = None) -> None:
        """How the handoff ended: "answered" (sets ``answered_at``), "callback_requested",
        "failed"... The first outcome stands."""
        at = time.time() if at is None else at
        seq = self._which(call_id, "handoffs", handoff)
        values: dict[str, Any] = {"outcome": outcome}
        if agent:
            values["agent"] = agent
        if outcome == "answered":
            values["answered_at"] = at
        self._submit(lambda conn: conn.execute(
            sa.update(handoffs).where(handoffs.c.call_id == call_id, handoffs.c.seq == seq,
                                      handoffs.c.outcome.is_(None)).values(**values)))

    def request_callback(self, call_id: str, number: str,
                         context: dict[str, Any] | None = None,
                         at: float | None = None) -> int:
        """No agent came: call ``number`` back later. Returns the callback's number."""
        at = time.time() if at is None else at
        seq = self._next(call_id, "callbacks")
        body = dumps(self._masked(context or {}))
        self._submit(lambda conn: conn.execute(sa.insert(callbacks).values(
            call_id=call_id, seq=seq, requested_at=at, number=number, context=body,
            state="pending", updated_at=at)))
        return seq

    def callback_state(self, call_id: str, state: str, callback: int = 0,
                       at: float | None = None) -> None:
        """A callback was worked ("done", "failed", "cancelled"); any process may say so."""
        at = time.time() if at is None else at
        self._submit(lambda conn: conn.execute(
            sa.update(callbacks).where(callbacks.c.call_id == call_id,
                                       callbacks.c.seq == callback)
            .values(state=state, updated_at=at)))

    def audio_path(self, call_id: str, leg: str) -> Path | None:
        """Where to write a leg's WAV, or None when recording is off."""
        if not self.record_audio or self.audio_dir is None:
            return None
        folder = self.audio_dir / call_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{leg}.wav"

    def add_audio(self, call_id: str, leg: str, path: str | Path,
                  at: float | None = None) -> None:
        """Record that a leg's audio was written to ``path``."""
        at = time.time() if at is None else at
        where = (audio.c.call_id == call_id, audio.c.leg == leg)

        def op(conn: sa.Connection) -> None:
            conn.execute(sa.delete(audio).where(*where))
            conn.execute(sa.insert(audio).values(call_id=call_id, leg=leg, path=str(path),
                                                 added_at=at))

        self._submit(op)

    def end(self, call_id: str, status: str = "completed", reason: str | None = None,
            error: str | None = None, summary: dict[str, Any] | None = None,
            at: float | None = None) -> None:
        """The call ended: ``status`` its outcome ("completed", "failed", "rejected"...),
        ``reason`` why ("hangup", "shutdown"...; the status if not given).

        A call ends once: a later ``end`` only fills in an error or summary still missing.
        Legs still joined leave, and a handoff still pending takes the end reason as outcome.
        """
        at = time.time() if at is None else at
        reason = reason or status
        body = None if summary is None else dumps(self._masked(summary))
        with self._state_lock:
            self._live.discard(call_id)

        def op(conn: sa.Connection) -> None:
            done = conn.execute(
                sa.update(calls).where(calls.c.call_id == call_id, calls.c.status == LIVE)
                .values(status=status, end_reason=reason, error=error, summary=body,
                        ended_at=at)).rowcount
            if done:
                _close_children(conn, call_id, at, reason)
                return
            for column, value in (("error", error), ("summary", body)):
                if value is not None:
                    conn.execute(sa.update(calls).where(
                        calls.c.call_id == call_id, calls.c[column].is_(None))
                        .values({column: value}))

        self._submit(op)

    def finish(self, call_id: str, events: Sequence[Event], status: str,
               error: str | None = None, summary: dict[str, Any] | None = None) -> None:
        """End a call with all its events (the file simulation's one call, at its end).

        ``events`` is the bus history: those already appended live are skipped. Never
        raises, as it runs in a ``finally`` block.
        """
        # Each step is guarded on its own: one bad event must not cost the call its end.
        try:
            with self._state_lock:
                state = self._calls.get(call_id)
                done = state.seq if state is not None else 0
            pending = list(events)[done:]
        except Exception:  # noqa: BLE001 - recording must never mask the call's own outcome
            log.exception("call store could not read the events of call %s", call_id)
            pending = []
        for event in pending:
            try:
                self.append(event, call_id)
            except Exception:  # noqa: BLE001 - as above
                log.exception("call store could not record an event of call %s", call_id)
        try:
            self.end(call_id, status, error=error, summary=summary)
        except Exception:  # noqa: BLE001 - as above
            log.exception("call store could not finish call %s", call_id)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every write queued so far is committed; False on timeout."""
        return self._writer.flush(timeout)

    async def aflush(self) -> None:
        """:meth:`flush` from a coroutine, without blocking the loop."""
        await asyncio.to_thread(self._writer.flush)

    # -- start-up -------------------------------------------------------------------------

    def recover(self) -> int:
        """Mark calls left "live" by a process that died as "interrupted"; returns how many.

        Their events stay. ``ended_at`` is the last moment the record shows (the latest
        event's audio time, a leg joining, a handoff), not the restart time. Calls live in
        this store are left alone. Run at start-up, before taking calls. It takes this
        process for the database's only server: servers sharing one PostgreSQL will need
        a per-server column to recover only their own calls.
        """
        self.flush()
        with self._state_lock:
            mine = set(self._live)
        with self._db_lock, self._engine.begin() as conn:
            rows = conn.execute(sa.select(calls.c.call_id, calls.c.started_at,
                                          calls.c.answered_at)
                                .where(calls.c.status == LIVE)).all()
            count = 0
            for call_id, started, answered in rows:
                if call_id in mine:
                    continue
                last = _last_moment(conn, call_id, started, answered)
                conn.execute(sa.update(calls).where(calls.c.call_id == call_id,
                                                    calls.c.status == LIVE)
                             .values(status=INTERRUPTED, end_reason=INTERRUPTED,
                                     ended_at=last))
                _close_children(conn, call_id, last, INTERRUPTED)
                count += 1
        if count:
            log.warning("call store: %d call(s) interrupted by the last stop", count)
        return count

    # -- reading (blocking) ------------------------------------------------------------

    def list_calls(self, status: str | Iterable[str] | None = None, limit: int = 50,
                   before: float | None = None) -> list[dict[str, Any]]:
        """Newest first; ``before`` a ``started_at`` to page back from."""
        return self._read(store_read.list_calls, status, limit, before)

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        """The call with legs, handoffs, callbacks, audio, transcript and ``event_count``."""
        return self._read(store_read.get_call, call_id)

    def call(self, call_id: str) -> dict[str, Any] | None:
        """:meth:`get_call` with ``events`` the event count (the first store's shape)."""
        record = self.get_call(call_id)
        if record is not None:
            record["events"] = record["event_count"]
        return record

    def events(self, call_id: str, kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The call's events (``to_dict()`` plus ``seq``), in publication order."""
        return self._read(store_read.events_of, call_id, kinds)

    def transcript(self, call_id: str) -> list[dict[str, Any]]:
        """Each leg's final transcripts and the bot's replies, in audio order."""
        return self._read(store_read.transcript, call_id)

    def list_callbacks(self, state: str | None = "pending",
                       limit: int = 100) -> list[dict[str, Any]]:
        """Callbacks in ``state`` (None: all), oldest first."""
        return self._read(store_read.list_callbacks, state, limit)

    def stats(self, since: float | None = None) -> dict[str, Any]:
        """Counts for the board (calls started at or after ``since`` when given)."""
        return self._read(store_read.stats, since)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued and release the database; idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if not self._writer.close(timeout):
            log.error("call store: writes still queued after %.0f s were lost", timeout)
        self._engine.dispose()

    @property
    def dropped(self) -> int:
        """Writes that failed and were logged (0 in a healthy store)."""
        return self._writer.dropped

    # -- internals -----------------------------------------------------------------------

    def _submit(self, op: Op | EventOp) -> None:
        if self._closed:
            log.error("call store is closed: write dropped (%r)", op)
            return
        self._writer.submit(op)

    def _masked(self, value: Any) -> Any:
        return self.redact(value) if self.redact is not None else value

    def _read(self, query: Any, *args: Any) -> Any:
        self.flush()
        with self._db_lock, self._engine.connect() as conn:
            return query(conn, *args)

    def _next(self, call_id: str, counter: str) -> int:
        with self._state_lock:
            state = self._calls.setdefault(call_id, _CallState())
            n = getattr(state, counter)
            setattr(state, counter, n + 1)
        return n

    def _which(self, call_id: str, counter: str, given: int | None) -> int:
        if given is not None:
            return given
        with self._state_lock:
            state = self._calls.get(call_id)
            return max(0, getattr(state, counter) - 1) if state else 0

    def _project(self, call_id: str, event: Event) -> None:
        # The events that say who is on the call and where the handoff stands also fill
        # the legs and handoffs tables, so subscribing the store to the bus is enough.
        kind, at = event.kind, time.time()
        if kind == "leg_joined":
            role, peer = getattr(event, "role", "") or event.leg, getattr(event, "peer", "")
            self.leg_joined(call_id, event.leg, role, peer or None, at)
            if role == "caller" and peer:
                self._submit(lambda conn: conn.execute(
                    sa.update(calls).where(calls.c.call_id == call_id,
                                           calls.c.caller.is_(None)).values(caller=peer)))
        elif kind == "call_state":
            if getattr(event, "state", "") in ANSWERED_STATES:
                self.answered(call_id, at)
        elif kind == "leg_left":
            self.leg_left(call_id, event.leg, getattr(event, "reason", None) or None, at)
        elif kind == "handoff_requested":
            self.request_handoff(call_id, getattr(event, "rule", "") or "unknown",
                                 getattr(event, "context", None),
                                 detail=getattr(event, "detail", None) or None, at=at)
        elif kind == "handoff":
            status, agent = getattr(event, "status", ""), getattr(event, "agent", "") or None
            if status == "ringing" and agent:
                self.handoff_agent(call_id, agent)
            elif status in ("answered", "failed", "callback_requested"):
                self.handoff_outcome(call_id, status, agent=agent, at=at)
        elif kind == "intent":
            intent = getattr(event, "intent", "")
            if intent and intent != "out_of_scope":
                self._submit(lambda conn: conn.execute(
                    sa.update(calls).where(calls.c.call_id == call_id,
                                           calls.c.intent.is_(None)).values(intent=intent)))


def _close_children(conn: sa.Connection, call_id: str, at: float, reason: str) -> None:
    """At the end of a call, legs still joined leave and a pending handoff ends."""
    conn.execute(sa.update(legs).where(legs.c.call_id == call_id, legs.c.left_at.is_(None))
                 .values(left_at=at, end_reason=reason))
    conn.execute(sa.update(handoffs).where(handoffs.c.call_id == call_id,
                                           handoffs.c.outcome.is_(None))
                 .values(outcome=reason))


def _last_moment(conn: sa.Connection, call_id: str, started: float,
                 answered: float | None) -> float:
    """The latest time a dead call's record shows it was still going."""
    t_audio = conn.execute(sa.select(sa.func.max(events.c.t_audio))
                           .where(events.c.call_id == call_id)).scalar()
    joined = conn.execute(sa.select(sa.func.max(legs.c.joined_at))
                          .where(legs.c.call_id == call_id)).scalar()
    handoff = conn.execute(sa.select(sa.func.max(sa.func.coalesce(
        handoffs.c.answered_at, handoffs.c.requested_at)))
        .where(handoffs.c.call_id == call_id)).scalar()
    moments = [started, answered, joined, handoff,
               None if t_audio is None else started + t_audio]
    return max(m for m in moments if m is not None)
