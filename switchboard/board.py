"""The supervisors' board: one row per live call, ranked by risk, updated a few times a
second.

:class:`Board` follows every live call of the call center (it subscribes to a call's bus
the first time it sees the call, replaying what the call published before) and keeps, per
call, what a supervisor scans for: state, agent, intent, the caller's rolling anger, the
last alerts and who is supervising. :meth:`Board.changes` is what one board page is sent
each tick: the rows that changed since that page's last tick and the calls that ended.
A busy call publishes dozens of events a second; the page gets at most one row for it per
tick (``[supervision] board_interval_s``), so 50 calls stay readable and cheap.

Risk (0-10, the sort key): the highest :class:`RiskAlert` level still on the row, or the
caller's rolling anger when higher, plus one while the caller waits for an agent (someone
is on hold with a problem the bot could not solve). Text that reaches the board is masked
by pipeline/redact.py when ``[privacy] redact_digits`` is on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from switchboard.config import Settings
from switchboard.pipeline.events import (
    EmotionScore,
    Event,
    HandoffUpdate,
    IntentDetected,
    RiskAlert,
    SupervisorJoined,
)
from switchboard.pipeline.redact import redact


@dataclass
class _Track:
    """What the board has gathered from one call's events."""

    intent: str = ""
    anger: float | None = None
    alerts: list[dict] = field(default_factory=list)
    handoff: str = ""
    supervisors: dict[str, str] = field(default_factory=dict)


class Board:
    """Rows of the live calls of a :class:`~switchboard.callcenter.CallCenter`."""

    def __init__(self, center, settings: Settings) -> None:
        self.center = center
        self.settings = settings
        self._tracks: dict[str, _Track] = {}

    # --- following the calls

    def _track(self, record) -> _Track:
        call = record.call
        track = self._tracks.get(call.call_id)
        if track is None:
            track = self._tracks[call.call_id] = _Track()
            for event in list(call.bus.history):
                self._on_event(track, event)
            call.bus.subscribe(lambda event: self._on_event(track, event))
        return track

    def _on_event(self, track: _Track, event: Event) -> None:
        if isinstance(event, IntentDetected) and event.leg == "caller" and event.intent:
            track.intent = event.intent
        elif isinstance(event, EmotionScore) and event.leg == "caller":
            track.anger = round(event.rolling_anger, 1)
        elif isinstance(event, RiskAlert):
            keep = self.settings.supervision.alerts_kept
            track.alerts = [*track.alerts, {"level": round(event.level, 1),
                                            "reason": self._text(event.reason),
                                            "detail": self._text(event.detail),
                                            "at": time.time()}][-keep:]
        elif isinstance(event, HandoffUpdate):
            track.handoff = event.status
        elif isinstance(event, SupervisorJoined):
            if event.mode:
                track.supervisors[event.supervisor] = event.mode
            else:
                track.supervisors.pop(event.supervisor, None)

    def _text(self, text: str) -> str:
        privacy = self.settings.privacy
        return redact(text, privacy.min_digits) if privacy.redact_digits else text

    # --- rows

    def rows(self) -> dict[str, dict]:
        """call id → its row, for every live call."""
        live = {}
        for call_id, record in list(self.center.calls.items()):
            live[call_id] = self.row(record)
        for gone in set(self._tracks) - set(live):
            del self._tracks[gone]
        return live

    def row(self, record) -> dict:
        call = record.call
        track = self._track(record)
        alert = max((a["level"] for a in track.alerts), default=0.0)
        risk = max(alert, track.anger or 0.0)
        if call.state.value == "waiting":
            risk += 1.0
        return {"call_id": call.call_id, "number": record.number, "channel": call.channel,
                "state": call.state.value, "started_at": call.started_at,
                "agent": record.agent or "", "intent": track.intent,
                "anger": track.anger, "alerts": list(track.alerts),
                "handoff": track.handoff, "supervisors": dict(track.supervisors),
                "risk": round(min(risk, 11.0), 1)}

    def changes(self, sent: dict[str, dict]) -> dict | None:
        """The update for a page that was last sent ``sent`` (updated in place); None when
        nothing changed."""
        rows = self.rows()
        changed = [row for call_id, row in rows.items() if sent.get(call_id) != row]
        removed = [call_id for call_id in sent if call_id not in rows]
        for call_id in removed:
            del sent[call_id]
        for row in changed:
            sent[row["call_id"]] = row
        if not changed and not removed:
            return None
        return {"kind": "rows", "rows": changed, "removed": removed, "now": time.time()}
