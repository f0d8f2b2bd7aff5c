"""The call store's tables, in SQLAlchemy Core (portable: SQLite and PostgreSQL alike).

Timestamps are wall-clock seconds since the epoch as floats, JSON bodies are text: both
read the same on every backend, so nothing here depends on one database's types.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: One row per call; ``status`` is "live" until the call ends, then its outcome.
calls = sa.Table(
    "calls", metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),  # where it came from: a peer or a file
    sa.Column("channel", sa.String(32)),  # sip, webrtc, file...
    sa.Column("caller", sa.Text),  # the caller's peer ("sip:alice@127.0.0.1:5062")
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("answered_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("end_reason", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("intent", sa.String(64)),
    sa.Column("summary", sa.Text),  # JSON
    sa.Index("ix_calls_status", "status"),
    sa.Index("ix_calls_started_at", "started_at"),
)

#: The parties of a call: caller, bot, agent, supervisors.
legs = sa.Table(
    "legs", metadata,
    sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.call_id"), primary_key=True),
    sa.Column("leg_id", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("peer", sa.Text),
    sa.Column("joined_at", sa.Float, nullable=False),
    sa.Column("left_at", sa.Float),
    sa.Column("end_reason", sa.String(64)),
)

#: Every event the call published, in publication order (``seq`` per call).
events = sa.Table(
    "events", metadata,
    sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.call_id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("leg", sa.String(64), nullable=False),
    sa.Column("t_audio", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float),
    sa.Column("body", sa.Text, nullable=False),  # JSON: the event's to_dict()
    sa.Index("ix_events_call_kind", "call_id", "kind"),
)

#: Bot → human handoffs; ``seq`` numbers a call's handoffs (a caller can be passed twice).
handoffs = sa.Table(
    "handoffs", metadata,
    sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.call_id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("context", sa.Text),  # JSON: transcript so far, intent, anger...
    sa.Column("agent", sa.Text),
    sa.Column("answered_at", sa.Float),
    sa.Column("outcome", sa.String(64)),  # None while pending
)

#: Callbacks promised when no agent came; worked after the call, so they have a state.
callbacks = sa.Table(
    "callbacks", metadata,
    sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.call_id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("context", sa.Text),  # JSON
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.Float),
    sa.Index("ix_callbacks_state", "state"),
)

#: Recorded audio files (only when recording is on), one per leg.
audio = sa.Table(
    "audio", metadata,
    sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.call_id"), primary_key=True),
    sa.Column("leg", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
)

#: Tables that hang off a call, children first (the order to delete a call in).
CHILDREN = (events, legs, handoffs, callbacks, audio)


def create_schema(engine: sa.Engine) -> None:
    """Create missing tables, and add columns a store written by an older version lacks.

    The first store (raw sqlite3) had only ``calls`` and ``events``; its databases open with
    the new nullable columns added, their records kept.
    """
    metadata.create_all(engine)
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"store table {table.name} lacks required column "
                                       f"{column.name}: migrate it by hand")
                kind = column.type.compile(dialect=engine.dialect)
                # Plain ALTER TABLE ADD COLUMN: understood by SQLite and PostgreSQL alike.
                conn.execute(sa.text(
                    f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
