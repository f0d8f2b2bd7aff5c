"""The call store's read queries, for the JSON API and the supervisor board.

Plain functions of a connection, returning JSON-ready dicts, so the same queries serve a
:class:`~switchboard.pipeline.store.CallStore` and any tool that opens the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from switchboard.pipeline.store_schema import audio, callbacks, calls, events, handoffs, legs

#: What the transcript is made of: each leg's final transcripts and what the bot said.
TRANSCRIPT_KINDS = ("transcript_final", "bot_reply")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _call_dict(row: sa.Row, with_summary: bool) -> dict[str, Any]:
    out = dict(row._mapping)
    summary = out.pop("summary", None)
    if with_summary:
        out["summary"] = _loads(summary) or {}
    ended = out["ended_at"]
    out["duration_s"] = None if ended is None else max(0.0, ended - out["started_at"])
    return out


def list_calls(conn: sa.Connection, status: str | Iterable[str] | None = None,
               limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
    """Newest calls first; ``before`` (a ``started_at``) pages back through older ones."""
    cols = [c for c in calls.c if c.name != "summary"]
    q = sa.select(*cols).order_by(calls.c.started_at.desc(), calls.c.call_id.desc())
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        q = q.where(calls.c.status.in_(wanted))
    if before is not None:
        q = q.where(calls.c.started_at < before)
    return [_call_dict(r, with_summary=False) for r in conn.execute(q.limit(limit))]


def get_call(conn: sa.Connection, call_id: str) -> dict[str, Any] | None:
    """One call with its legs, handoffs, callbacks, audio, transcript and event count."""
    row = conn.execute(sa.select(calls).where(calls.c.call_id == call_id)).first()
    if row is None:
        return None
    out = _call_dict(row, with_summary=True)
    out["legs"] = [dict(r._mapping) for r in conn.execute(
        sa.select(legs).where(legs.c.call_id == call_id)
        .order_by(legs.c.joined_at, legs.c.leg_id))]
    out["handoffs"] = [_with_context(r) for r in conn.execute(
        sa.select(handoffs).where(handoffs.c.call_id == call_id).order_by(handoffs.c.seq))]
    out["callbacks"] = [_with_context(r) for r in conn.execute(
        sa.select(callbacks).where(callbacks.c.call_id == call_id).order_by(callbacks.c.seq))]
    out["audio"] = [dict(r._mapping) for r in conn.execute(
        sa.select(audio).where(audio.c.call_id == call_id).order_by(audio.c.leg))]
    out["transcript"] = transcript(conn, call_id)
    out["event_count"] = conn.execute(
        sa.select(sa.func.count()).select_from(events).where(events.c.call_id == call_id)
    ).scalar_one()
    return out


def _with_context(row: sa.Row) -> dict[str, Any]:
    out = dict(row._mapping)
    out["context"] = _loads(out["context"]) or {}
    return out


def events_of(conn: sa.Connection, call_id: str,
              kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """A call's events as published (each its ``to_dict()`` plus ``seq``), in order."""
    q = sa.select(events.c.seq, events.c.body).where(events.c.call_id == call_id)
    if kinds is not None:
        q = q.where(events.c.kind.in_(list(kinds)))
    out = []
    for seq, body in conn.execute(q.order_by(events.c.seq)):
        item = json.loads(body)
        item["seq"] = seq
        out.append(item)
    return out


def transcript(conn: sa.Connection, call_id: str) -> list[dict[str, Any]]:
    """Who said what, in the order of the audio: every leg's final transcripts and the
    bot's replies (speaker "bot"), ordered by where in the call they end."""
    q = (sa.select(events.c.seq, events.c.kind, events.c.leg, events.c.t_audio, events.c.body)
         .where(events.c.call_id == call_id, events.c.kind.in_(TRANSCRIPT_KINDS))
         .order_by(events.c.t_audio, events.c.seq))
    out = []
    for seq, kind, leg, t_audio, body in conn.execute(q):
        item = json.loads(body)
        if not item.get("text"):
            continue
        out.append({
            "seq": seq, "leg": leg, "speaker": "bot" if kind == "bot_reply" else leg,
            "t_start": item.get("t_start", t_audio), "t_end": t_audio, "text": item["text"],
        })
    return out


def list_callbacks(conn: sa.Connection, state: str | None = "pending",
                   limit: int = 100) -> list[dict[str, Any]]:
    """Callbacks to work, oldest first."""
    q = sa.select(callbacks).order_by(callbacks.c.requested_at, callbacks.c.call_id)
    if state is not None:
        q = q.where(callbacks.c.state == state)
    return [_with_context(r) for r in conn.execute(q.limit(limit))]


def stats(conn: sa.Connection, since: float | None = None) -> dict[str, Any]:
    """Counts for the supervisor board: calls by status and end reason, handoffs by
    outcome, callbacks by state, mean duration of ended calls."""
    scope = sa.true() if since is None else calls.c.started_at >= since

    def by(column: sa.ColumnElement[Any], table: sa.Table, where: Any,
           none: str = "none") -> dict[str, int]:
        # NULL is named in Python: a COALESCE with a bound literal in both SELECT and
        # GROUP BY is two different parameters to PostgreSQL, which then refuses it.
        q = sa.select(column, sa.func.count()).select_from(table).where(where).group_by(column)
        return {none if k is None else str(k): int(n) for k, n in conn.execute(q)}

    in_scope = sa.select(calls.c.call_id).where(scope)
    by_status = by(calls.c.status, calls, scope)
    duration = conn.execute(
        sa.select(sa.func.avg(calls.c.ended_at - calls.c.started_at))
        .where(scope, calls.c.ended_at.is_not(None))).scalar_one()
    return {
        "calls": sum(by_status.values()),
        "live": by_status.get("live", 0),
        "by_status": by_status,
        "by_end_reason": by(calls.c.end_reason, calls,
                            sa.and_(scope, calls.c.end_reason.is_not(None))),
        "handoffs": by(handoffs.c.outcome, handoffs, handoffs.c.call_id.in_(in_scope),
                       none="pending"),
        "callbacks": by(callbacks.c.state, callbacks, callbacks.c.call_id.in_(in_scope)),
        "mean_duration_s": None if duration is None else float(duration),
    }
