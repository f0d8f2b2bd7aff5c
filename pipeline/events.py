"""Typed events: what every stage publishes about a call.

Each event names its call and leg and is stamped twice: ``t_audio``, the position in the
leg's audio (seconds from the start of the call) that it concerns, and ``latency_ms``, how
long after that audio was captured the event was published. The coach view, the
supervisor board and the call store all consume these same objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    """Base of every event."""

    kind: ClassVar[str] = "event"
    call_id: str
    leg: str
    t_audio: float
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kind"] = self.kind
        return out


@dataclass
class SpeechStarted(Event):
    """VAD opened an utterance at ``t_audio``."""

    kind: ClassVar[str] = "speech_started"
    utterance: int = 0


@dataclass
class SpeechEnded(Event):
    """VAD closed an utterance; ``t_audio`` is the end of its last speech."""

    kind: ClassVar[str] = "speech_ended"
    utterance: int = 0
    t_start: float = 0.0
    too_short: bool = False  # under VAD's min_utterance_ms: a blip, not worth analysing


@dataclass
class TranscriptPartial(Event):
    """A provisional transcript of the utterance so far."""

    kind: ClassVar[str] = "transcript_partial"
    utterance: int = 0
    text: str = ""


@dataclass
class TranscriptFinal(Event):
    """The transcript of a finished utterance."""

    kind: ClassVar[str] = "transcript_final"
    utterance: int = 0
    text: str = ""
    t_start: float = 0.0
    model: str = ""


@dataclass
class ProsodyFeatures(Event):
    """Voice features of one utterance, and the call's rolling values."""

    kind: ClassVar[str] = "prosody"
    utterance: int = 0
    f0_median_hz: float = 0.0
    f0_range_st: float = 0.0
    f0_std_st: float = 0.0
    voiced_fraction: float = 0.0
    energy_db: float = 0.0
    energy_std_db: float = 0.0
    speaking_rate_sps: float = 0.0  # syllable nuclei per second of speech
    rolling: dict[str, float] = field(default_factory=dict)


@dataclass
class EmotionScore(Event):
    """Anger and stress of one utterance on 0-10, against the speaker's own baseline.

    ``anger`` and ``stress`` score the utterance; ``rolling_*`` are the call's running
    values (what escalation reads: anger above 7 of 10 hands a caller to a human).
    ``baseline_ready`` is False while the speaker's reference is still being learnt from
    the call's first seconds (those utterances are scored against the reference so far,
    themselves included, so their scores are damped). ``heads`` says what was read:
    "voice+embedding" (the voice features and the ASR's voice embedding) or "voice" (the
    features alone, when the embedding failed or came too late).
    """

    kind: ClassVar[str] = "emotion"
    utterance: int = 0
    anger: float = 0.0  # angry against every other emotion
    anger_vs_calm: float = 0.0  # angry against a neutral or calm voice
    stress: float = 0.0  # high-arousal negative voice (the agent leg's stress)
    rolling_anger: float = 0.0
    rolling_stress: float = 0.0
    baseline_ready: bool = False
    heads: str = "voice"
    # How far the score can be trusted, 0-1: low while the speaker's reference is thin or
    # when the voice and embedding heads disagree strongly (issue 12). Escalation and
    # coaching rules act on a high score only when it is confident enough.
    confidence: float = 1.0


@dataclass
class Passage:
    """One knowledge-base passage returned by retrieval."""

    id: str
    title: str
    text: str
    score: float
    source: str


@dataclass
class IntentDetected(Event):
    """The intent of a final transcript (``"out_of_scope"`` when nothing fits)."""

    kind: ClassVar[str] = "intent"
    utterance: int = 0
    intent: str = ""
    confidence: float = 0.0  # the classifier's margin for the best intent (higher: surer)
    text: str = ""  # the final transcript it was detected on
    candidates: list[tuple[str, float]] = field(default_factory=list)  # best few, best first


@dataclass
class KnowledgeHits(Event):
    """Top knowledge-base passages for a final transcript."""

    kind: ClassVar[str] = "knowledge"
    utterance: int = 0
    passages: list[Passage] = field(default_factory=list)


@dataclass
class BotReply(Event):
    """Text the bot decided to say, and why."""

    kind: ClassVar[str] = "bot_reply"
    utterance: int = 0
    reply_id: int = 0
    text: str = ""
    intent: str = ""  # the flow the reply serves; "" when the turn was not understood
    # The dialogue's view after this reply (pipeline/dialogue.py): what the reply is
    # (greet|ask|confirm|answer|act|close|clarify|handoff|goodbye), the active flow even
    # when the turn was not understood, the values collected and which were confirmed.
    act: str = ""
    flow: str = ""
    slot: str = ""  # the value asked for or read back ("customer_name|account_id": either)
    slots: dict[str, str] = field(default_factory=dict)
    confirmed: list[str] = field(default_factory=list)
    # The dialogue's own decision to hand off (complex_flow | cannot_do | action_failed |
    # not_collected), "" when none: pipeline/escalation.py turns it into a handoff.
    handoff: str = ""
    handoff_detail: str = ""


@dataclass
class ReplyAudioStarted(Event):
    """First synthesised sample of a reply reached the output (voice-to-voice point)."""

    kind: ClassVar[str] = "reply_audio"
    reply_id: int = 0
    tts_ms: float = 0.0
    duration_s: float = 0.0


@dataclass
class StageLatency(Event):
    """One timed step of a stage, against its budget."""

    kind: ClassVar[str] = "stage_latency"
    step: str = ""
    stage: str = ""
    budget_ms: float = 0.0
    breach: bool = False


@dataclass
class StageDegraded(Event):
    """A stage moved along its degrade ladder."""

    kind: ClassVar[str] = "stage_degraded"
    stage: str = ""
    rung: str = ""
    level: int = 0
    reason: str = ""


@dataclass
class StageError(Event):
    """A stage failed on some input; the call carries on without that result."""

    kind: ClassVar[str] = "stage_error"
    stage: str = ""
    error: str = ""


@dataclass
class SpeechPaused(Event):
    """Speech stopped at ``t_audio``; not yet the end of the turn (it may resume)."""

    kind: ClassVar[str] = "speech_paused"
    utterance: int = 0


@dataclass
class SpeechResumed(Event):
    """Speech came back before the pause became an end of turn."""

    kind: ClassVar[str] = "speech_resumed"
    utterance: int = 0


# --- The live call: legs, DTMF, barge-in, handoff (telephony/call.py, switchboard/callcenter.py)


@dataclass
class CallStateChanged(Event):
    """The call moved to another state (bot, waiting for an agent, with an agent, ended)."""

    kind: ClassVar[str] = "call_state"
    state: str = ""
    reason: str = ""


@dataclass
class LegJoined(Event):
    """A party joined the call (``leg`` is its id; ``role`` what it is)."""

    kind: ClassVar[str] = "leg_joined"
    role: str = ""
    peer: str = ""


@dataclass
class LegLeft(Event):
    """A party left the call; ``media``: how its connection's media went (the edge's
    ``media_stats``; empty for edges without)."""

    kind: ClassVar[str] = "leg_left"
    role: str = ""
    reason: str = ""
    media: dict = field(default_factory=dict)


@dataclass
class LegHold(Event):
    """A party put the call on hold (``held``) or took it off hold."""

    kind: ClassVar[str] = "leg_hold"
    held: bool = False


@dataclass
class DtmfReceived(Event):
    """A key the party pressed (RFC 4733 telephone-event)."""

    kind: ClassVar[str] = "dtmf"
    digit: str = ""


@dataclass
class BotReplyInterrupted(Event):
    """The caller spoke over a bot reply and the bot stopped: ``stop_ms`` from the start of
    the caller's speech to the bot's audio leaving the caller's stream."""

    kind: ClassVar[str] = "bot_reply_interrupted"
    reply_id: int = 0
    played_s: float = 0.0
    stop_ms: float = 0.0


@dataclass
class TurnResumed(Event):
    """The caller talked over the start of the bot's reply to their words: they had not
    finished. The reply ``reply_id`` is withdrawn (the dialogue is back where it was before
    ``text``) and the caller's next words join ``text`` as one turn."""

    kind: ClassVar[str] = "turn_resumed"
    reply_id: int = 0
    act: str = ""  # the withdrawn reply's dialogue act
    text: str = ""


@dataclass
class HandoffRequested(Event):
    """The caller goes to a human: why, and what the agent gets with the call."""

    kind: ClassVar[str] = "handoff_requested"
    rule: str = ""
    detail: str = ""
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class HandoffUpdate(Event):
    """Progress of a handoff: an agent ringing, answered, declined, or none came."""

    kind: ClassVar[str] = "handoff"
    status: str = ""  # ringing | answered | no_answer | failed | callback_requested
    agent: str = ""
    detail: str = ""


@dataclass
class CoachPrompt(Event):
    """A coaching prompt for the agent: ``spoken`` (at most six words, whispered into the
    agent's ear only) and ``detail`` (shown on the coach view). ``rule`` names the rule
    that fired; ``priority`` ranks prompts (higher first, only the top one is spoken);
    ``played`` is False when it was shown but not spoken (muted, outranked, rate-limited).
    """

    kind: ClassVar[str] = "coach_prompt"
    prompt_id: int = 0
    rule: str = ""  # de_escalate | next_step | compliance | calm | nudge | escalate
    priority: int = 0
    spoken: str = ""
    detail: str = ""
    played: bool = True
    reason: str = ""  # why not played, when it was not


@dataclass
class CoachPromptPlayed(Event):
    """The first sample of a spoken prompt entered the agent's stream."""

    kind: ClassVar[str] = "coach_prompt_played"
    prompt_id: int = 0


@dataclass
class KnowledgeCard(Event):
    """A knowledge card for the coach view: the flow's guideline for what the caller wants."""

    kind: ClassVar[str] = "knowledge_card"
    flow: str = ""
    title: str = ""
    text: str = ""
    source: str = ""


@dataclass
class ChecklistStep:
    """One step of a flow's workflow and whether the agent has done it."""

    name: str
    label: str
    done: bool = False
    required_before: str = ""  # a step that must come first (verify identity → change)


@dataclass
class ChecklistUpdate(Event):
    """The workflow checklist of the call's flow, with the steps ticked so far."""

    kind: ClassVar[str] = "checklist"
    flow: str = ""
    steps: list[ChecklistStep] = field(default_factory=list)


@dataclass
class RiskAlert(Event):
    """A call needs a supervisor's eye: high anger, a compliance miss, an escalation
    suggestion. ``level`` is 0-10; the board sorts calls by it."""

    kind: ClassVar[str] = "risk_alert"
    level: float = 0.0
    reason: str = ""
    detail: str = ""
    # What a supervisor needs to step in at once (the call's context: transcript, intent,
    # anger trend, the flow and its checklist); filled on escalation suggestions.
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class SupervisorJoined(Event):
    """A supervisor joined or changed mode (listen | whisper | barge) or left ("")."""

    kind: ClassVar[str] = "supervisor"
    supervisor: str = ""
    mode: str = ""
