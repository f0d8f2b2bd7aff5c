"""Per-stage latency budgets: timing, breach counting, Prometheus export, degrade ladders.

A :class:`StageMonitor` belongs to one stage of one call. The stage reports each timed step
through ``observe``; the monitor records it in the process's Prometheus metrics (shared by
every call, :class:`Metrics`) and in the call's own samples (:class:`CallSamples`), counts
breaches, and moves the stage along its ladder (see budgets.toml for the policy). The
stage reads ``rung`` to decide how much work to do.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from switchboard.config import BudgetOptions

_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
            0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)


class Metrics:
    """The process's Prometheus metrics, in their own registry, shared by every call.

    One instance per process (the server's ``/metrics``) or per test; every call's stage
    monitors write into it, so its histograms and counters add up across calls. What a
    single call needs for its own report lives in that call's :class:`CallSamples`.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "switchboard_stage_latency_seconds", "Latency of a timed pipeline step",
            ["step"], registry=self.registry, buckets=_BUCKETS,
        )
        self.breaches = Counter(
            "switchboard_stage_budget_breaches", "Observations over the step's budget",
            ["step"], registry=self.registry,
        )
        self.moves = Counter(
            "switchboard_stage_degrade_moves", "A call's stage moved to this rung of its ladder",
            ["stage", "rung"], registry=self.registry,
        )
        self.on_rung = Gauge(
            "switchboard_stage_calls_on_rung",
            "Live calls whose stage is on this rung of its ladder (stages with a ladder)",
            ["stage", "rung"], registry=self.registry,
        )
        self.errors = Counter(
            "switchboard_stage_errors", "Inputs a stage failed on", ["stage"],
            registry=self.registry,
        )

    def exposition(self) -> str:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry).decode()


class CallSamples:
    """One call's raw observations per step (ms), for its exact percentile report."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def add(self, step: str, ms: float) -> None:
        self.samples.setdefault(step, []).append(ms)

    def percentiles(self, step: str) -> tuple[float, float, int]:
        """(p50, p95, n) of a step's observations; NaN when there are none."""
        values = sorted(self.samples.get(step, []))
        if not values:
            return float("nan"), float("nan"), 0
        pick = lambda q: values[min(len(values) - 1, int(round(q * (len(values) - 1))))]  # noqa: E731
        return pick(0.5), pick(0.95), len(values)


@dataclass(frozen=True)
class Observation:
    """The outcome of one ``observe`` call."""

    step: str
    ms: float
    budget_ms: float
    breach: bool
    moved_to: int | None  # new ladder level if this observation moved the stage


class StageMonitor:
    """Budget bookkeeping and degrade ladder of one stage of one call.

    Each call's stage has its own monitor (a shared one would let one call's failures push
    a healthy call down its ladder); all of them write into the process's ``metrics``.
    ``samples`` is the call's own record (a private one when not given).
    """

    def __init__(self, stage: str, options: BudgetOptions, metrics: Metrics,
                 samples: CallSamples | None = None):
        self.stage = stage
        self.ladder = options.ladder(stage)
        self.budgets = {b.name: b.budget_ms for b in options.for_stage(stage)}
        window, self._degrade_after, self._recover_after = options.policy(stage)
        self._window: deque[bool] = deque(maxlen=window)
        # A crash is not slowness: whatever the stage's own window, failures are counted
        # over the common one (3 failures in 20 steps hand over to the next rung).
        self._fails: deque[bool] = deque(maxlen=options.window)
        self._fail_after = options.degrade_after
        self._ok_streak = 0
        self._floor = 0  # highest rung still allowed (raised when a rung fails)
        self._metrics = metrics
        self._samples = samples if samples is not None else CallSamples()
        self.level = 0
        # Only a stage with somewhere to go is counted per rung: a one-rung monitor (the
        # call-path steps, the policy) would only grow the gauge of calls never closed.
        self._closed = len(self.ladder) < 2
        if not self._closed:
            metrics.on_rung.labels(stage=stage, rung=self.rung).inc()

    @property
    def rung(self) -> str:
        return self.ladder[self.level]

    def observe(self, step: str, ms: float) -> Observation:
        budget = self.budgets.get(step)
        if budget is None:
            raise KeyError(f"no budget named {step!r} for stage {self.stage!r} in budgets.toml")
        self._metrics.latency.labels(step=step).observe(ms / 1000.0)
        self._samples.add(step, ms)
        self._fails.append(False)
        breach = ms > budget
        if breach:
            self._metrics.breaches.labels(step=step).inc()
        return Observation(step, ms, budget, breach, self._record(breach))

    def failure(self) -> int | None:
        """A step failed outright: it counts like a breach; returns the new level if moved.

        A rung left because it kept failing (a crashing model, not a slow one) is not
        recovered to for the rest of the call.
        """
        self._metrics.errors.labels(stage=self.stage).inc()
        level = self.level
        self._fails.append(True)
        moved = self._record(True)
        if (moved is None and sum(self._fails) >= self._fail_after
                and self.level < len(self.ladder) - 1):
            moved = self._move(self.level + 1)
        if moved is not None:
            self._floor = max(self._floor, level + 1)
        return moved

    def _record(self, bad: bool) -> int | None:
        self._window.append(bad)
        self._ok_streak = 0 if bad else self._ok_streak + 1
        if sum(self._window) >= self._degrade_after and self.level < len(self.ladder) - 1:
            return self._move(self.level + 1)
        if self._ok_streak >= self._recover_after and self.level > self._floor:
            return self._move(self.level - 1)
        return None

    def _move(self, level: int) -> int:
        if not self._closed:
            self._metrics.on_rung.labels(stage=self.stage, rung=self.rung).dec()
            self._metrics.on_rung.labels(stage=self.stage, rung=self.ladder[level]).inc()
        self.level = level
        self._window.clear()
        self._fails.clear()
        self._ok_streak = 0
        self._metrics.moves.labels(stage=self.stage, rung=self.rung).inc()
        return level

    def close(self) -> None:
        """The call is over: it no longer counts among the live calls on its rung (the
        owner of a monitor calls this when its call ends; a graph's stages do)."""
        if not self._closed:
            self._closed = True
            self._metrics.on_rung.labels(stage=self.stage, rung=self.rung).dec()
