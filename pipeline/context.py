"""What every stage of one call shares: identity, settings, bus, metrics, clocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from switchboard.pipeline.budgets import CallSamples, Metrics
from switchboard.pipeline.bus import EventBus
from switchboard.pipeline.clock import AudioClock
from switchboard.pipeline.spoken import expects_digits

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
    # The value the bot's last reply asked the caller for (a slot name, as BotReply.slot),
    # "" when it asked none: set by the policy stage, read through :meth:`awaited`.
    awaiting: str = ""
    # Where the caller's keys go while the bot waits for a number (pipeline/keypad.py):
    # set by the caller's policy stage, fed by the call (telephony/call.py).
    keypad: Callable[[str, float], None] | None = None
    # The caller's words their next final continues, after a reply to them was withdrawn
    # (TurnResumed): set by the policy stage, taken by the NLU stage.
    resumes: str = ""

    def clock(self, leg: str) -> AudioClock:
        return self.clocks.setdefault(leg, AudioClock())

    def awaited(self, leg: str) -> str:
        """What ``leg``'s next words are expected to give: the slot the bot asked the caller
        for, while the bot has the call (not once an agent has it); else ""."""
        if leg != "caller" or self.settings.policy.mode != "bot":
            return ""
        return self.awaiting

    def keys_a_number(self, leg: str) -> bool:
        """Whether a key ``leg`` presses now is a digit of the number the bot asked for
        (keyed in, pipeline/keypad.py) rather than a command such as 0 for an agent."""
        return self.keypad is not None and expects_digits(self.awaited(leg))
