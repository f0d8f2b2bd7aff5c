"""The coach on a live call: the call's events in, spoken prompts into the agent's ear.

:class:`CallCoach` runs the decision engine (pipeline/coach.py) on a
:class:`~switchboard.telephony.call.Call`: it subscribes to the call's bus, replays what
happened before the agent joined, renders prompts with the call's TTS (fixed texts,
cached per process) and plays them into the call's ``coach`` source, which the routing
matrix lets reach the agent only. The moment a prompt's first sample enters the agent's
mix is published as CoachPromptPlayed, with its latency from the end of the utterance
that triggered it (budgets.toml ``coach_prompt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from switchboard.pipeline.coach import Coach, Proposal
from switchboard.pipeline.coach_rules import CoachRules
from switchboard.pipeline.events import CoachPromptPlayed, Event

log = logging.getLogger(__name__)


class CallCoach:
    """The coach on one live call: events in, prompts into the agent's ear.

    ``render(text)`` returns a fixed phrase's PCM (CallCenter.phrase: rendered once per
    process); ``articles`` maps intents to knowledge-base articles.
    """

    def __init__(self, call, render: Callable[[str], Awaitable[bytes]],
                 articles: dict | None = None, rules: CoachRules | None = None):
        from switchboard.pipeline.budgets import StageMonitor

        self.call = call
        self.render = render
        opts = call.settings.coach
        self.engine = Coach(call.call_id, opts, rules, call.publish, articles, call.context)
        self._monitor = StageMonitor("coach", call.settings.budgets, call.ctx.metrics,
                                     call.ctx.samples)
        self._task: asyncio.Task | None = None
        # Set when a proposal arrives: the loop decides at once rather than at its next
        # tick (the tick is for the timers and the agent's pause).
        self._wake = asyncio.Event()
        self._prerendering: asyncio.Task | None = None
        self._live: dict[str, Proposal] = {}

    def mute(self, flag: bool) -> None:
        """The agent page's mute switch."""
        self.engine.mute(flag)

    @property
    def muted(self) -> bool:
        return self.engine.muted

    def start(self) -> None:
        """Attach to the call (``call.coaching``) and run until it ends."""
        call = self.call
        call.coaching = self
        call.coach.on_start = self._started
        call.coach.on_done = self._done
        self.engine.replay(list(call.bus.history))
        call.bus.subscribe(self._on_event)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="coach")
        # The prompts this call may speak soon, rendered now (cached per process).
        texts = {r.spoken for r in self.engine.rules.rules.values() if "{" not in r.spoken}
        self._prerendering = asyncio.get_running_loop().create_task(self._prerender(texts))

    async def stop(self) -> None:
        """Stop before the call's end (the call's end stops it too)."""
        for task in (self._task, self._prerendering):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _on_event(self, event: Event) -> None:
        self.engine.on_event(event)
        if self.engine.pending:
            self._wake.set()

    async def _prerender(self, texts: set[str]) -> None:
        for text in sorted(texts):
            if self.call.ending:
                return
            try:
                await self.render(text)
            except Exception:  # noqa: BLE001 - rendered again when needed
                log.warning("coach: pre-rendering %r failed", text, exc_info=True)

    async def _run(self) -> None:
        every = self.call.settings.coach.tick_s
        try:
            while not self.call.ending:
                self._wake.clear()
                proposal = self.engine.tick()
                if proposal is not None:
                    await self._speak(proposal)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), every)
        finally:
            self.call.bus.unsubscribe(self._on_event)
            self._monitor.close()

    async def _speak(self, proposal: Proposal) -> None:
        prompt = proposal.prompt
        try:
            pcm = await self.render(prompt.spoken)
        except Exception:  # noqa: BLE001 - a prompt that cannot be rendered stays on screen
            log.exception("coach: rendering %r failed", prompt.spoken)
            self.engine.finished(prompt.prompt_id)
            return
        tag = f"coach-{prompt.prompt_id}"
        self._live[tag] = proposal
        self.call.coach.play(pcm, tag)

    def _started(self, tag: str, at: float) -> None:
        proposal = self._live.get(tag)
        if proposal is None:
            return
        self._monitor.observe("prompt_delivery", (at - proposal.since) * 1000.0)
        if not proposal.timed:
            self.call.publish(CoachPromptPlayed(
                call_id=self.call.call_id, leg="agent", t_audio=proposal.trigger_t,
                prompt_id=proposal.prompt.prompt_id))
            return
        captured = self.call.ctx.clock(proposal.trigger_leg).captured_at(proposal.trigger_t)
        latency = (at - captured) * 1000.0
        self.call.publish(CoachPromptPlayed(
            call_id=self.call.call_id, leg="agent", t_audio=proposal.trigger_t,
            latency_ms=latency, prompt_id=proposal.prompt.prompt_id))
        self._monitor.observe("coach_prompt", latency)

    def _done(self, tag: str) -> None:
        proposal = self._live.pop(tag, None)
        if proposal is not None:
            self.engine.finished(proposal.prompt.prompt_id)
