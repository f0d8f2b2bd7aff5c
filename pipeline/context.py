"""What every stage of one call shares: identity, settings, bus, metrics, clocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.pipeline.budgets import CallSamples, Metrics
from switchboard.pipeline.bus import EventBus
from switchboard.pipeline.clock import AudioClock

from switchboard.config import Settings


@dataclass
class CallContext:
    """One call's shared state, handed to each stage when the graph is built.

    ``metrics`` is the process's Prometheus metrics: a server passes its one instance to
    every call, so ``/metrics`` adds up all calls (the default, a fresh one, suits a single
    simulated call or a test). ``samples`` is this call's own record of every timed step,
    from which its percentile report is computed.
    """

    call_id: str
    settings: Settings
    bus: EventBus = field(default_factory=EventBus)
    metrics: Metrics = field(default_factory=Metrics)
    samples: CallSamples = field(default_factory=CallSamples)
    clocks: dict[str, AudioClock] = field(default_factory=dict)

    def clock(self, leg: str) -> AudioClock:
        return self.clocks.setdefault(leg, AudioClock())
