"""The call store's write path: one thread that owns every write, fed by a queue.

The server runs on one asyncio loop, and a database write (an fsync, a network round trip
to PostgreSQL) must never stall it. Callers only put an operation on a queue (about a
microsecond); this thread takes what has arrived, applies it in one transaction and commits
within ``commit_interval_s`` of the oldest operation in the batch. A process killed with
SIGKILL therefore loses at most that last moment of a call, never what was committed.

Serialising events to JSON also happens here, off the loop.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from switchboard.pipeline.events import Event
from switchboard.pipeline.store_schema import events as events_table

log = logging.getLogger(__name__)

#: A write: a function applied to the writer's connection inside its transaction.
Op = Callable[[sa.Connection], None]

#: Most operations in one transaction: bounds a transaction's size and the time to retry it.
MAX_BATCH = 5000


@dataclass(slots=True)
class EventOp:
    """One event to append (kept apart from other ops so runs of them insert in one go)."""

    call_id: str
    seq: int
    event: Event


@dataclass(slots=True)
class _Flush:
    done: threading.Event


_STOP = object()


def _json_default(value: Any) -> Any:
    # Events carry numpy scalars and arrays now and then; tuples and sets become lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dumps(value: Any) -> str:
    """JSON text for a body or context (numpy values and other oddities made plain)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _number(value: Any) -> float | None:
    # A float column takes plain floats only (np.float32 does not bind); NaN means "none".
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def event_row(op: EventOp, redact: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The ``events`` row of one event (its words masked by ``redact``, when given)."""
    e = op.event
    body = e.to_dict()
    return {
        "call_id": op.call_id, "seq": op.seq, "kind": e.kind, "leg": e.leg,
        "t_audio": _number(e.t_audio) or 0.0, "latency_ms": _number(e.latency_ms),
        "body": dumps(redact(body) if redact is not None else body),
    }


class StoreWriter:
    """The single writer thread of one :class:`~switchboard.pipeline.store.CallStore`.

    ``lock`` is held around each transaction: an in-memory SQLite database is one connection
    shared with the readers, which must not interleave with a half-written batch.
    ``redact`` masks each event's body before it is written (pipeline/redact.py): here, on
    this thread, so the loop never pays for it.
    """

    def __init__(self, engine: sa.Engine, commit_interval_s: float,
                 lock: AbstractContextManager[Any],
                 redact: Callable[[Any], Any] | None = None) -> None:
        self._engine = engine
        self._redact = redact
        self._interval = commit_interval_s
        self._lock = lock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.dropped = 0  # operations that failed even on their own (logged)
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="callstore-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Op | EventOp) -> None:
        """Queue a write; returns at once."""
        self._queue.put(op)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is committed; False on timeout."""
        if not self._thread.is_alive():
            return True
        marker = _Flush(threading.Event())
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Commit what is queued and stop the thread; False if it did not stop in time."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[Op | EventOp] = []
            markers: list[_Flush] = []
            stop = False
            deadline = time.monotonic() + self._interval
            while True:
                if isinstance(item, _Flush):
                    markers.append(item)
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                remaining = deadline - time.monotonic()
                if len(batch) >= MAX_BATCH or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            for marker in markers:
                marker.done.set()
            if stop:
                return

    def _commit(self, batch: list[Op | EventOp]) -> None:
        try:
            self._transaction(batch)
            return
        except Exception as exc:  # noqa: BLE001 - one bad write must not lose the batch
            log.warning("call store batch of %d failed (%s); retrying one by one",
                        len(batch), exc)
        for op in batch:
            try:
                self._transaction([op])
            except Exception:  # noqa: BLE001 - the writer thread must outlive any write
                self.dropped += 1
                log.exception("call store dropped a write: %r", op)

    def _transaction(self, batch: list[Op | EventOp]) -> None:
        with self._lock, self._engine.begin() as conn:
            run: list[dict[str, Any]] = []
            for op in batch:
                if isinstance(op, EventOp):
                    try:
                        run.append(event_row(op, self._redact))
                    except Exception:  # noqa: BLE001 - an unserialisable event is skipped
                        self.dropped += 1
                        log.exception("call store cannot serialise %r", op.event)
                    continue
                if run:
                    conn.execute(sa.insert(events_table), run)
                    run = []
                op(conn)
            if run:
                conn.execute(sa.insert(events_table), run)
        self.commits += 1
