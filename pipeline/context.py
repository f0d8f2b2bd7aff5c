"""What every stage of one call shares: identity, settings, bus, metrics, clocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.pipeline.budgets import Metrics
from switchboard.pipeline.bus import EventBus
from switchboard.pipeline.clock import AudioClock

from switchboard.config import Settings


@dataclass
class CallContext:
    """One call's shared state, handed to each stage when the graph is built."""

    call_id: str
    settings: Settings
    bus: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    clocks: dict[str, AudioClock] = field(default_factory=dict)

    def clock(self, leg: str) -> AudioClock:
        return self.clocks.setdefault(leg, AudioClock())
