"""A call's workflow: the steps the agent has done, heard from the agent's own words.

:class:`StepTracker` reads each final transcript of the agent leg and ticks the steps
(ABCD agent actions, described in the coach's rule file) whose phrasing it holds, in an
order that puts a step's prerequisite first ("let me verify your name, then I'll update
the address" completes both, in order). A step done before the step it requires is a
compliance miss: the identity check before any account change, whatever flow the call is
in, since the flow may be unknown or wrong.

:class:`Workflow` is one flow's checklist (a knowledge-base article's required actions,
with any prerequisite the flow leaves out put in front of the step that needs it) as the
coach view shows it, ticked from the tracker.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.pipeline.coach_rules import CoachRules
from switchboard.pipeline.events import ChecklistStep


@dataclass(frozen=True)
class Miss:
    """A step done before the step it requires."""

    step: str
    required: str


class StepTracker:
    """The steps the agent has completed on this call, from their words."""

    def __init__(self, rules: CoachRules):
        self.rules = rules
        self.done: list[str] = []
        # Prerequisites first: a sentence naming both completes them in order.
        self._order = sorted(rules.steps, key=lambda n: bool(rules.steps[n].requires))

    def hear(self, text: str, extra: tuple[str, ...] = ()) -> tuple[list[str], list[Miss]]:
        """Tick what ``text`` (an agent's final transcript) completes; returns the steps
        newly done and the compliance misses among them. ``extra``: steps of the current
        flow that the rule file does not describe (matched by their default phrasing)."""
        said = text.lower()
        names = self._order + [n for n in extra if n not in self.rules.steps]
        ticked: list[str] = []
        misses: list[Miss] = []
        for name in names:
            if name in self.done:
                continue
            spec = self.rules.step(name)
            if spec.said is None or not spec.said.search(said):
                continue
            if spec.requires and spec.requires not in self.done:
                misses.append(Miss(name, spec.requires))
            self.done.append(name)
            ticked.append(name)
        return ticked, misses


class Workflow:
    """One flow's checklist, in the order the agent should go."""

    def __init__(self, flow: str, title: str, actions: tuple[str, ...], rules: CoachRules,
                 guideline: tuple[str, ...] = ()):
        self.flow = flow
        self.title = title
        self.guideline = guideline
        names: list[str] = []
        for action in actions:
            required = rules.step(action).requires
            if required and required not in names:
                names.append(required)  # the compliance step the flow must not skip
            if action not in names:
                names.append(action)
        self.steps = [rules.step(n) for n in names]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def checklist(self, done: list[str]) -> list[ChecklistStep]:
        return [ChecklistStep(s.name, s.label, s.name in done, s.requires)
                for s in self.steps]

    def next_step(self, done: list[str]):
        """The first step not done yet (its StepSpec), None when all are."""
        return next((s for s in self.steps if s.name not in done), None)
