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
  is ready, so a loud or unusual voice is not mistaken for anger in the first seconds, and
  only from a score confident enough (``EmotionScore.confidence``: a thin reference, or
  voice and embedding heads that disagree, lower it);
- the voice is merely raised (rolling anger past 5) but the caller's last few turns also
  say it in words: complaint words ("this is ridiculous", "unacceptable", "third time"),
  profanity, or a mention of a manager or supervisor. Words alone never hand off (apart
  from asking for a person): "my manager approved the refund" is not a complaint, and an
  acted or read sentence says nothing about the voice.

:class:`Escalation` is fed every event of the call and answers, at most once, with the
reason to hand off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchboard.pipeline.events import (
    BotReply,
    EmotionScore,
    Event,
    TranscriptFinal,
    TurnResumed,
)

from switchboard.config import EscalationOptions

#: Ways callers ask for a person (matched on the final transcript, lower-cased).
ASK_FOR_PERSON = re.compile(
    r"\b(speak|talk|chat|connect|transfer|put)\b.{0,30}\b(someone|somebody|person|human|agent|"
    r"representative|operator|manager|supervisor|real person)\b"
    r"|\b(human|real person|live agent|an agent|representative|operator)\b.{0,12}"
    r"\b(please|now)\b"
    r"|^\W*(agent|operator|representative|human)\W*(please)?\W*$"
)

#: Words that say the caller is unhappy, by kind (matched on the final transcript,
#: lower-cased). Kept to phrases that rarely come up in a calm request.
TEXT_CUES: dict[str, re.Pattern[str]] = {
    "complaint": re.compile(
        r"\b(ridiculous|unacceptable|outrageous|absurd|pathetic|incompetent|useless|"
        r"disgraceful|a joke|a scam|rip[- ]?off|fed up|sick (and tired )?of|had enough|"
        r"(waste|wasting) (of )?my time|(file|make|lodge|filing|making) a complaint|"
        r"i('m| am) (so |very |really )?(angry|furious|livid|upset|annoyed|frustrated)|"
        r"(third|fourth|fifth|tenth|\d+(st|nd|rd|th)) time|(still|again) not (working|fixed)|"
        r"nobody (ever )?(helps|listens|calls back)|worst (service|company|experience))\b"),
    "profanity": re.compile(
        r"\b(damn(ed|it)?|goddamn|hell|crap(py)?|shit(ty)?|bullshit|fuck(ing|ed|er|s)?|wtf|"
        r"bloody|pissed( off)?|ass(hole)?|bastards?|screw (you|this|that))\b"),
    "manager": re.compile(r"\b(manager|supervisor|someone in charge|your boss)\b"),
}


def text_cues(text: str) -> list[str]:
    """The kinds of :data:`TEXT_CUES` found in ``text`` ("complaint", "profanity",
    "manager"), in that order."""
    low = text.lower()
    return [kind for kind, pattern in TEXT_CUES.items() if pattern.search(low)]


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
        # Cue kinds of the caller's last few final transcripts, oldest first.
        self._recent_cues: list[list[str]] = []
        self._last_emotion: EmotionScore | None = None

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
        if isinstance(event, TranscriptFinal):
            if opts.ask_for_person and ASK_FOR_PERSON.search(event.text.lower()):
                return HandoffReason("asked_for_person", event.text, event.t_audio)
            self._recent_cues = [*self._recent_cues, text_cues(event.text)][
                -max(1, opts.words_window_turns):]
            # The voice's score of this turn may have come before its words.
            if self._last_emotion is not None:
                return self._anger(self._last_emotion, event.t_audio)
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
        elif isinstance(event, TurnResumed):
            # The caller had not finished: a withdrawn apology was no misunderstanding.
            if event.act == "clarify":
                self._misunderstood = max(0, self._misunderstood - 1)
        elif isinstance(event, EmotionScore):
            self._last_emotion = event
            return self._anger(event, event.t_audio)
        return None

    def _anger(self, event: EmotionScore, t_audio: float) -> HandoffReason | None:
        """The anger rule on the latest score: past the threshold, or past the lower one
        with the caller's recent words; either only once the reference is ready and the
        score confident enough."""
        opts = self.options
        if not event.baseline_ready or event.confidence < opts.anger_min_confidence:
            return None
        if event.rolling_anger > opts.anger_threshold:
            return HandoffReason(
                "anger", f"rolling anger {event.rolling_anger:.1f} > "
                f"{opts.anger_threshold:g}", t_audio)
        cues = sorted({c for turn in self._recent_cues for c in turn})
        if cues and event.rolling_anger > opts.anger_threshold_with_words:
            return HandoffReason(
                "anger", f"rolling anger {event.rolling_anger:.1f} > "
                f"{opts.anger_threshold_with_words:g} with the caller's words "
                f"({', '.join(cues)})", t_audio)
        return None
