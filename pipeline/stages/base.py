"""The common shape of a stage: publish events, time steps against budgets, survive errors."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from pipecat.processors.frame_processor import FrameProcessor
from switchboard.pipeline.budgets import StageMonitor
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import Event, StageDegraded, StageError, StageLatency
from switchboard.pipeline.frames import EventFrame

log = logging.getLogger(__name__)


class Stage(FrameProcessor):
    """A pipecat processor with a budget monitor, an event emitter and a worker.

    Heavy work runs off the event loop (``run_blocking``) so the loop keeps moving audio:
    on ``executor`` when given (a model's worker shared by every call: the bundle's queue
    for that model), else on the stage's own single worker thread. A step that raises
    becomes a :class:`StageError` event and the call carries on without that result.
    """

    stage_name = "stage"

    def __init__(self, ctx: CallContext, leg: str = "caller",
                 executor: Executor | None = None):
        super().__init__(name=f"{self.stage_name}:{leg}")
        self.ctx = ctx
        self.leg = leg
        self.monitor = StageMonitor(self.stage_name, ctx.settings.budgets, ctx.metrics,
                                    ctx.samples)
        self._own_worker = executor is None
        self._worker: Executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=self.stage_name)
        self._other_monitors: dict[str, StageMonitor] = {}
        self._extra_latency_s = ctx.settings.faults.extra_latency_ms.get(self.stage_name, 0) / 1e3
        self._tasks: set[asyncio.Task] = set()

    @property
    def clock(self):
        return self.ctx.clock(self.leg)

    async def emit(self, event: Event) -> None:
        """Publish ``event`` to the call's bus and pass it downstream."""
        self.ctx.bus.publish(event)
        await self.push_frame(EventFrame(event=event))

    def spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` beside the frame flow (a decode, a score waiting for its input);
        :meth:`drain` waits for every such task."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until every spawned task is done: at the end of the stream, so their
        results go out before it."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run_blocking(self, fn, *args: Any) -> Any:
        """Run ``fn(*args)`` on the stage's worker thread (with any injected fault delay)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._call, fn, args)

    async def run_costed(self, fn, *args: Any) -> tuple[Any, float]:
        """:meth:`run_blocking`, and what the work itself cost: the worker thread's CPU
        milliseconds in ``fn`` (with any injected delay, which stands for a slow model).
        A compute budget is judged on this, not on wall time: waiting for the shared
        worker or for the GIL behind other calls is not the step's cost, and shedding the
        step's work would not shorten it; the latency budgets (``emotion_update``,
        ``voice_to_voice``) catch what that waiting does to a call."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._call_costed, fn, args)

    def _call_costed(self, fn, args) -> tuple[Any, float]:
        started = time.thread_time()
        result = self._call(fn, args)
        return result, (time.thread_time() - started + self._extra_latency_s) * 1000

    def _call(self, fn, args):
        if self._extra_latency_s:
            time.sleep(self._extra_latency_s)
        self.check_fault()
        return fn(*args)

    def check_fault(self) -> None:
        """Raise if configuration asks this stage to fail on its current rung."""
        if f"{self.stage_name}:{self.monitor.rung}" in self.ctx.settings.faults.fail_rungs:
            raise RuntimeError(f"injected fault: {self.stage_name} on {self.monitor.rung}")

    def _monitor_for(self, step: str) -> StageMonitor:
        budget = self.ctx.settings.budgets.budgets.get(step)
        stage = budget.stage if budget else self.stage_name
        if stage == self.stage_name:
            return self.monitor
        if stage not in self._other_monitors:
            self._other_monitors[stage] = StageMonitor(
                stage, self.ctx.settings.budgets, self.ctx.metrics, self.ctx.samples
            )
        return self._other_monitors[stage]

    async def observe(self, step: str, ms: float, t_audio: float, publish: bool = True) -> None:
        """Record a timed step; publish its latency (unless per-frame) and any ladder move."""
        monitor = self._monitor_for(step)
        obs = monitor.observe(step, ms)
        if publish or obs.breach:
            self.ctx.bus.publish(StageLatency(
                call_id=self.ctx.call_id, leg=self.leg, t_audio=t_audio, latency_ms=ms,
                step=step, stage=monitor.stage, budget_ms=obs.budget_ms, breach=obs.breach,
            ))
        if obs.moved_to is not None and monitor is self.monitor:
            reason = (f"{step} over budget ({ms:.0f} > {obs.budget_ms:.0f} ms)" if obs.breach
                      else f"{step} back within budget")
            await self._moved(t_audio, obs.moved_to, reason)

    async def _moved(self, t_audio: float, level: int, reason: str) -> None:
        await self.emit(StageDegraded(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=t_audio,
            stage=self.stage_name, rung=self.monitor.rung, level=level, reason=reason,
        ))
        await self.on_rung_change(self.monitor.rung)

    async def on_rung_change(self, rung: str) -> None:
        """Hook: a stage adapts its work to the new rung."""

    async def fail(self, t_audio: float, exc: BaseException) -> None:
        """Report a failed step; repeated failures move the stage down its ladder."""
        log.warning("%s failed on call %s: %s", self.name, self.ctx.call_id, exc)
        error = f"{type(exc).__name__}: {exc}"
        await self.emit(StageError(call_id=self.ctx.call_id, leg=self.leg, t_audio=t_audio,
                                   stage=self.stage_name, error=error))
        moved = self.monitor.failure()
        if moved is not None:
            await self._moved(t_audio, moved, f"failing ({error})")

    async def close(self) -> None:
        """The call is over (ended or cancelled): cancel what is still spawned, wait for
        it, and release the stage's worker and monitors. Idempotent."""
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._own_worker:
            self._worker.shutdown(wait=False, cancel_futures=True)
        for monitor in (self.monitor, *self._other_monitors.values()):
            monitor.close()

    async def cleanup(self) -> None:
        await super().cleanup()
        if self._own_worker:
            self._worker.shutdown(wait=False, cancel_futures=True)
