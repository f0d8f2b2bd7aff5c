"""The coach: turns a live call's events into short spoken prompts for the agent alone.

:class:`Coach` is the decision engine. It reads the call's events (the caller's anger and
its trend, the intent, the agent's words and stress, speech and silence, hold, the
handoff's context) and proposes prompts by the rules of pipeline/data/coach.toml
(pipeline/coach_rules.py). Proposals wait in a queue; :meth:`Coach.tick` decides when one
is spoken: never while the agent talks (their VAD's end of speech opens a pause), never
within ``min_gap_s`` of the previous prompt, never when muted, and only the most
important one (the others are published with ``played=False`` and the reason, so the
coach view still shows them). Knowledge cards, the workflow checklist (pipeline/
workflow.py) and the call's risk level are published as they change.

:class:`~switchboard.pipeline.coach_call.CallCoach` runs the engine on a live call and
plays its prompts into the agent's ear.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from switchboard.pipeline.coach_rules import CoachRules, Rule, load_rules
from switchboard.pipeline.events import (
    ChecklistUpdate,
    CoachPrompt,
    EmotionScore,
    Event,
    HandoffRequested,
    IntentDetected,
    KnowledgeCard,
    LegHold,
    RiskAlert,
    SpeechEnded,
    SpeechStarted,
    TranscriptFinal,
)
from switchboard.pipeline.workflow import StepTracker, Workflow

from switchboard.config import CoachOptions


@dataclass
class Proposal:
    """A prompt waiting for its moment: what, since when, and what triggered it."""

    prompt: CoachPrompt
    since: float
    trigger_leg: str
    trigger_t: float
    #: False for prompts about the past (the state when the agent joined) or a timer:
    #: no utterance to time their latency from.
    timed: bool = True


class Coach:
    """Coaching decisions for one call (no audio: :class:`CallCoach` plays them).

    ``articles``: knowledge-base articles by intent (pipeline/knowledge.py) for cards and
    workflows; ``context``: the call's context for escalations (Call.context);
    ``clock``: monotonic seconds (a test may drive it).
    """

    def __init__(self, call_id: str, options: CoachOptions, rules: CoachRules | None = None,
                 publish: Callable[[Event], None] = lambda e: None,
                 articles: dict | None = None, context: Callable[[], dict] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.call_id = call_id
        self.options = options
        self.rules = rules or load_rules(options.rules or None, options.max_words)
        self.publish = publish
        self.articles = articles or {}
        self._context = context
        self.clock = clock
        self.muted = False
        self.pending: list[Proposal] = []
        self.tracker = StepTracker(self.rules)
        self.workflow: Workflow | None = None
        self.risk = 0.0
        self._risk_parts: dict[str, float] = {}
        self._risk_published = 0.0
        self._anger: deque[float] = deque(maxlen=16)
        self._fired: dict[str, float] = {}  # rule → when it last fired
        self._next_id = 1
        self._agent_speaking = False
        self._agent_pause_at = float("-inf")
        self._last_voice = clock()
        self._hold_since: float | None = None
        self._playing: int | None = None
        self._last_end = float("-inf")
        self._replaying = False
        self._timed = True
        self._t_caller = 0.0

    # --- the agent page's control

    def mute(self, flag: bool) -> None:
        """Mute (True) or unmute spoken prompts; muted prompts are still shown."""
        self.muted = bool(flag)
        if self.muted:
            for p in self.pending:
                self._decide(p, False, "muted")
            self.pending.clear()

    # --- input

    def replay(self, history: list[Event]) -> None:
        """What happened before the agent joined: state only, then one look at it (the
        anger now, the flow the caller is in), so the agent starts with the right card
        and at most one prompt about the past."""
        self._replaying = True
        try:
            for event in history:
                self.on_event(event)
        finally:
            self._replaying = False
        self._timed = False
        try:
            self._look_back()
        finally:
            self._timed = True

    def _look_back(self) -> None:
        if self._anger:
            self._check_anger(self._anger[-1], "caller", self._t_caller)
        if self.workflow is not None:
            self._publish_flow()
            self._propose_next("caller", self._t_caller)
        self._update_risk("caller", self._t_caller)

    def on_event(self, event: Event) -> None:
        """One event of the call (subscribe this to the call's bus)."""
        now = self.clock()
        leg = event.leg
        if leg == "caller":
            self._t_caller = max(self._t_caller, event.t_audio)
        if isinstance(event, SpeechStarted):
            self._last_voice = now
            if leg == "agent":
                self._agent_speaking = True
        elif isinstance(event, SpeechEnded):
            self._last_voice = now
            if leg == "agent":
                self._agent_speaking = False
                self._agent_pause_at = now
        elif isinstance(event, EmotionScore):
            self._on_emotion(event)
        elif isinstance(event, IntentDetected) and leg == "caller":
            rule = self.rules.rules.get("next_step")
            floor = rule.number("min_intent_confidence", 0.0) if rule else 0.0
            if event.intent in self.articles and event.confidence >= floor:
                self._set_flow(event.intent, leg, event.t_audio)
        elif isinstance(event, HandoffRequested):
            self._on_handoff(event)
        elif isinstance(event, TranscriptFinal) and event.text:
            if leg == "agent":
                self._on_agent_words(event)
            elif leg == "caller":
                self._on_caller_words(event)
        elif isinstance(event, LegHold):
            self._hold_since = now if event.held else None

    def _on_emotion(self, event: EmotionScore) -> None:
        if event.confidence < self.options.min_confidence:
            return  # a thin or contradictory reading drives nothing
        if event.leg == "caller":
            rule = self.rules.rules.get("de_escalate")
            if rule and rule.params.get("needs_baseline", True) and not event.baseline_ready:
                return
            self._anger.append(event.rolling_anger)
            self._risk_parts["anger"] = event.rolling_anger
            self._check_anger(event.rolling_anger, "caller", event.t_audio)
            self._update_risk("caller", event.t_audio)
        elif event.leg == "agent":
            rule = self.rules.rules.get("calm")
            if rule and event.rolling_stress >= rule.number("stress_at_least", 7.0):
                self._propose(rule, event.leg, event.t_audio, stress=event.rolling_stress)
                self._risk_parts["stress"] = rule.risk
                self._update_risk(event.leg, event.t_audio)

    def _check_anger(self, anger: float, leg: str, t: float) -> None:
        rule = self.rules.rules.get("de_escalate")
        if rule is None:
            return
        over = int(rule.number("rise_over", 3))
        rise = anger - self._anger[-1 - over] if len(self._anger) > over else 0.0
        if anger >= rule.number("anger_at_least", 7.0):
            trend = "rising" if rise > 0 else "high"
        elif rise >= rule.number("rise_by", 2.0) and anger >= rule.number("rise_floor", 4.0):
            trend = f"rising by {rise:.1f}"
        else:
            return
        self._propose(rule, leg, t, anger=anger, trend=trend)

    def _on_handoff(self, event: HandoffRequested) -> None:
        context = event.context or {}
        flow = (context.get("dialogue") or {}).get("flow")
        intent = (context.get("intent") or {}).get("intent")
        for name in (flow, intent):
            if name in self.articles:
                self._set_flow(name, "caller", event.t_audio)
                return

    def _on_agent_words(self, event: TranscriptFinal) -> None:
        extra = self.workflow.names if self.workflow else ()
        ticked, misses = self.tracker.hear(event.text, extra)
        rule = self.rules.rules.get("compliance")
        for miss in misses:
            spec, need = self.rules.step(miss.step), self.rules.step(miss.required)
            if rule is not None:
                self._propose(rule, "agent", event.t_audio, step_label=spec.label,
                              required_label=need.label)
                self._risk_parts["compliance"] = rule.risk
        if misses:
            self._update_risk("agent", event.t_audio, "compliance",
                              f"{misses[0].step} before {misses[0].required}")
        if ticked and self.workflow is not None and set(ticked) & set(self.workflow.names):
            self._publish_checklist(event.t_audio)
            self._propose_next("agent", event.t_audio)

    def _on_caller_words(self, event: TranscriptFinal) -> None:
        rule = self.rules.rules.get("escalate")
        pattern = rule.params.get("caller_says") if rule else None
        if pattern is not None and pattern.search(event.text.lower()):
            self._risk_parts["caller_words"] = rule.risk
            self._update_risk("caller", event.t_audio, "caller_words", event.text)

    # --- flow, cards, checklist

    def _set_flow(self, intent: str, leg: str, t: float) -> None:
        if self.workflow is not None and self.workflow.flow == intent:
            return
        article = self.articles[intent]
        self.workflow = Workflow(intent, article.title, tuple(article.actions), self.rules,
                                 tuple(article.steps))
        if not self._replaying:
            self._publish_flow(t)
            self._propose_next(leg, t)

    def _publish_flow(self, t: float | None = None) -> None:
        assert self.workflow is not None
        article = self.articles[self.workflow.flow]
        t = self._t_caller if t is None else t
        self.publish(KnowledgeCard(call_id=self.call_id, leg="coach", t_audio=t,
                                   flow=self.workflow.flow, title=article.title,
                                   text="\n".join(article.steps), source=article.source))
        self._publish_checklist(t)

    def _publish_checklist(self, t: float) -> None:
        assert self.workflow is not None
        self.publish(ChecklistUpdate(call_id=self.call_id, leg="coach", t_audio=t,
                                     flow=self.workflow.flow,
                                     steps=self.workflow.checklist(self.tracker.done)))

    def _propose_next(self, leg: str, t: float) -> None:
        rule = self.rules.rules.get("next_step")
        step = self.workflow.next_step(self.tracker.done) if self.workflow else None
        if rule is None or step is None:
            return
        i = self.workflow.names.index(step.name)
        guideline = self.workflow.guideline[i] if i < len(self.workflow.guideline) else ""
        # A newer next step replaces one still waiting: only the current one is useful.
        for p in [p for p in self.pending if p.prompt.rule == "next_step"]:
            self.pending.remove(p)
            self._decide(p, False, "superseded")
        self._propose(rule, leg, t, step=step.spoken, step_label=step.label.lower(),
                      flow_title=self.workflow.title, guideline=guideline)

    # --- risk

    def _update_risk(self, leg: str, t: float, reason: str = "", detail: str = "") -> None:
        level = min(10.0, max(self._risk_parts.values(), default=0.0))
        reason = reason or max(self._risk_parts, key=self._risk_parts.get, default="")
        self.risk = level
        if self._replaying:
            return  # the past: one look at the end of the replay
        # Published when it moves a step or crosses a whole level (7 of 10 matters).
        moved = abs(level - self._risk_published) >= self.options.risk_step or (
            int(level) != int(self._risk_published))
        if moved or (
                reason in ("compliance", "caller_words") and not self._replaying):
            self._risk_published = level
            self.publish(RiskAlert(call_id=self.call_id, leg="coach", t_audio=t,
                                   level=round(level, 1), reason=reason, detail=detail))
        rule = self.rules.rules.get("escalate")
        if rule is not None and level >= self.options.escalate_at:
            if self._propose(rule, leg, t, reason=reason or "risk"):
                context = self._context() if self._context else {}
                if self.workflow is not None:
                    context = {**context, "checklist": [
                        s.__dict__ for s in self.workflow.checklist(self.tracker.done)]}
                self.publish(RiskAlert(call_id=self.call_id, leg="coach", t_audio=t,
                                       level=round(level, 1), reason="escalate",
                                       detail=f"supervisor suggested: {reason}",
                                       context=context))

    # --- proposals and delivery

    def _propose(self, rule: Rule, leg: str, t: float, **fields) -> bool:
        """Queue ``rule``'s prompt (False when the rule is cooling down or replaying)."""
        now = self.clock()
        if self._replaying or now - self._fired.get(rule.name, float("-inf")) < rule.cooldown_s:
            return False
        self._fired[rule.name] = now
        spoken = rule.spoken.replace("{step}", str(fields.get("step", "")))
        try:
            detail = rule.detail.format(**fields)
        except (KeyError, ValueError, IndexError):
            detail = rule.detail
        prompt = CoachPrompt(call_id=self.call_id, leg="agent", t_audio=t,
                             prompt_id=self._next_id, rule=rule.name, priority=rule.priority,
                             spoken=spoken, detail=detail)
        self._next_id += 1
        timed = self._timed and rule.name not in ("silence", "hold")
        proposal = Proposal(prompt, now, leg, t, timed)
        if self.muted:
            self._decide(proposal, False, "muted")
        else:
            self.pending.append(proposal)
        return True

    def tick(self) -> Proposal | None:
        """Check the timers and the queue: the proposal to speak now, if any (already
        published as played; the caller of tick plays its audio)."""
        now = self.clock()
        self._timers(now)
        if not self.pending:
            return None
        waited = [p for p in self.pending if now - p.since > self.options.max_wait_s]
        for p in waited:
            self.pending.remove(p)
            self._decide(p, False, "agent kept talking" if self._agent_speaking
                         else "rate limited")
        if not self.pending or not self._may_speak(now):
            return None
        best = max(self.pending, key=lambda p: (p.prompt.priority, p.since))
        for p in self.pending:
            if p is not best:
                self._decide(p, False, f"outranked by {best.prompt.rule}")
        self.pending.clear()
        self._playing = best.prompt.prompt_id
        self._decide(best, True, "")
        return best

    def _may_speak(self, now: float) -> bool:
        return (not self.muted and not self._agent_speaking and self._playing is None
                and now - self._agent_pause_at >= self.options.pause_wait_ms / 1000
                and now - self._last_end >= self.options.min_gap_s)

    def _timers(self, now: float) -> None:
        silence = self.rules.rules.get("silence")
        quiet = now - self._last_voice
        if silence and quiet >= self.options.silence_s and self._hold_since is None:
            if self._propose(silence, "caller", self._t_caller, seconds=quiet):
                self._last_voice = now  # one nudge per silence
        hold = self.rules.rules.get("hold")
        if hold and self._hold_since is not None and now - self._hold_since >= self.options.hold_s:
            self._propose(hold, "caller", self._t_caller, seconds=now - self._hold_since)

    def _decide(self, proposal: Proposal, played: bool, reason: str) -> None:
        proposal.prompt.played = played
        proposal.prompt.reason = reason
        self.publish(proposal.prompt)

    def finished(self, prompt_id: int) -> None:
        """The prompt's audio has all been played (or was cut)."""
        if self._playing == prompt_id:
            self._playing = None
            self._last_end = self.clock()
