"""When the bot hands a caller to a human: rules read from the call's events.

The rules, each one configurable (``[escalation]`` in the settings):

- the caller asks for a person ("can I talk to a human", "agent please");
- the caller presses the handoff key (0 by default, RFC 4733 DTMF);
- the bot did not understand the caller twice in a row: clarifying questions
  (``BotReply.act == "clarify"``) only, so asking again for a value the caller has not
  given yet counts toward the dialogue's own limit (``dialogue.max_asks``), not this one;
- the dialogue decides it cannot finish the request (``BotReply.handoff``: a flow marked
  complex, no automatic action, an action that failed, a value not obtained after
  ``max_asks`` tries), as the rule "dialogue";
- the caller's rolling anger passes the threshold (7 of 10), once the speaker's reference
  is ready, so a loud or unusual voice is not mistaken for anger in the first seconds.

:class:`Escalation` is fed every event of the call and answers, at most once, with the
reason to hand off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchboard.pipeline.events import BotReply, EmotionScore, Event, TranscriptFinal

from switchboard.config import EscalationOptions

#: Ways callers ask for a person (matched on the final transcript, lower-cased).
ASK_FOR_PERSON = re.compile(
    r"\b(speak|talk|chat|connect|transfer|put)\b.{0,30}\b(someone|somebody|person|human|agent|"
    r"representative|operator|manager|supervisor|real person)\b"
    r"|\b(human|real person|live agent|an agent|representative|operator)\b.{0,12}"
    r"\b(please|now)\b"
    r"|^\W*(agent|operator|representative|human)\W*(please)?\W*$"
)


@dataclass(frozen=True)
class HandoffReason:
    """Why the call goes to a human, and the event that decided it."""

    rule: str  # asked_for_person | dtmf | not_understood | anger | dialogue
    detail: str
    t_audio: float


class Escalation:
    """Decides, from one call's events, whether and why to hand the caller to a human."""

    def __init__(self, options: EscalationOptions, caller_leg: str = "caller"):
        self.options = options
        self.caller_leg = caller_leg
        self.decided: HandoffReason | None = None
        self._misunderstood = 0

    def on_event(self, event: Event) -> HandoffReason | None:
        """The reason to hand off, the first time a rule fires; None otherwise."""
        if self.decided is not None or event.leg != self.caller_leg:
            return None
        reason = self._check(event)
        if reason is not None:
            self.decided = reason
        return reason

    def on_dtmf(self, digit: str, t_audio: float) -> HandoffReason | None:
        if self.decided is None and digit == self.options.dtmf_key:
            self.decided = HandoffReason("dtmf", f"pressed {digit}", t_audio)
            return self.decided
        return None

    def _check(self, event: Event) -> HandoffReason | None:
        opts = self.options
        if isinstance(event, TranscriptFinal) and opts.ask_for_person:
            if ASK_FOR_PERSON.search(event.text.lower()):
                return HandoffReason("asked_for_person", event.text, event.t_audio)
        elif isinstance(event, BotReply):
            if event.handoff and opts.dialogue:
                return HandoffReason("dialogue", f"{event.handoff}: {event.handoff_detail}",
                                     event.t_audio)
            # A reply without a dialogue act (an older policy) counts as not understood
            # when it serves no flow.
            missed = event.act == "clarify" if event.act else not event.intent
            self._misunderstood = self._misunderstood + 1 if missed else 0
            if self._misunderstood >= opts.misunderstood_in_a_row:
                return HandoffReason(
                    "not_understood", f"{self._misunderstood} replies in a row without an "
                    "understood request", event.t_audio)
        elif isinstance(event, EmotionScore):
            if event.baseline_ready and event.rolling_anger > opts.anger_threshold:
                return HandoffReason(
                    "anger", f"rolling anger {event.rolling_anger:.1f} > "
                    f"{opts.anger_threshold:g}", event.t_audio)
        return None
