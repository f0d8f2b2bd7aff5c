"""The call record store: every call and every event it produced (SQLite by default).

The interface is two methods, ``begin`` and ``finish``; PostgreSQL for multi-machine
deployments implements the same. A record is written even when the call failed: the
session calls ``finish`` from a ``finally`` block with the status and error.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from switchboard.pipeline.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL,
    error TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS events (
    call_id TEXT NOT NULL REFERENCES calls(call_id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    leg TEXT NOT NULL,
    t_audio REAL NOT NULL,
    latency_ms REAL,
    body TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
"""


class CallStore:
    """SQLite call records at ``sqlite:///path`` (``sqlite:///:memory:`` for tests)."""

    def __init__(self, url: str):
        if not url.startswith("sqlite:///"):
            raise ValueError(f"unsupported store URL {url!r} (only sqlite:/// so far)")
        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.executescript(SCHEMA)

    def begin(self, call_id: str, source: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (call_id, source, started_at, status) "
                "VALUES (?, ?, ?, 'live')", (call_id, source, time.time()),
            )

    def finish(self, call_id: str, events: list[Event], status: str, error: str | None = None,
               summary: dict | None = None) -> None:
        rows = [
            (call_id, i, e.kind, e.leg, e.t_audio, e.latency_ms, json.dumps(e.to_dict()))
            for i, e in enumerate(events)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute(
                "UPDATE calls SET ended_at = ?, status = ?, error = ?, summary = ? "
                "WHERE call_id = ?",
                (time.time(), status, error, json.dumps(summary or {}), call_id),
            )

    def call(self, call_id: str) -> dict | None:
        cur = self._db.execute(
            "SELECT call_id, source, status, error, summary FROM calls WHERE call_id = ?",
            (call_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        n = self._db.execute("SELECT COUNT(*) FROM events WHERE call_id = ?", (call_id,))
        return {"call_id": row[0], "source": row[1], "status": row[2], "error": row[3],
                "summary": json.loads(row[4] or "{}"), "events": n.fetchone()[0]}

    def close(self) -> None:
        self._db.close()
