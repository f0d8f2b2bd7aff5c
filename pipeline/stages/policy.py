"""Policy stage: the bot's side of the conversation, one dialogue per call.

Each understood caller utterance (``IntentDetected``) is a turn of the call's
:class:`~switchboard.pipeline.dialogue.DialogueManager`; its reply goes out as a
``BotReply`` carrying the dialogue's view (act, flow, slots, confirmed values, and its
own decision to hand off, which pipeline/escalation.py turns into a handoff). A reply that
asks for a business action is spoken first ("One moment..."), the action runs through the
action interface (pipeline/actions.py; async, so a webhook never blocks the loop), and
what the dialogue says about the result follows. Turns run beside the frame flow, one at a
time in arrival order: a slow back end (a webhook has up to its timeout) holds the next
turn, never the leg's audio or the events behind it. The bot replies only while
``policy.mode`` is "bot": the call center flips it to "agent" at a handoff.

Two ways in besides the caller's understood words: a number keyed on the keypad while the
bot waits for one (pipeline/keypad.py) is a turn of its own, and a reply the caller talks
over at once is withdrawn (``TurnResumed``): they had not finished, so their words join
their next ones as one turn.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from pipecat.frames.frames import EndFrame
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.intent import OUT_OF_SCOPE
from switchboard.pipeline.actions import ActionError, ActionRequest, ActionResult, Actions
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.dialogue import (
    DialogueManager,
    DialogueReply,
    DialogueState,
    FaqSource,
    FlowPlan,
)
from switchboard.pipeline.events import (
    BotReply,
    BotReplyInterrupted,
    Event,
    IntentDetected,
    SpeechEnded,
    TranscriptFinal,
    TurnResumed,
)
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.keypad import Keypad
from switchboard.pipeline.stages.base import Stage

log = logging.getLogger(__name__)


#: Replies a caller may talk over at once because they had not finished: a question, an
#: apology, an answer. Never a read-back (talking over it is the answer to it), an action
#: under way, a handoff or a goodbye.
WITHDRAWABLE = frozenset({"ask", "clarify", "close", "answer"})


@dataclass
class _Turn:
    """The caller's last turn, as it can be withdrawn: the dialogue's state before it, and
    the reply it got."""

    intent: IntentDetected
    before: DialogueState
    awaiting: str
    reply_id: int = 0
    act: str = ""


@dataclass(frozen=True)
class DialogueKit:
    """What every call's dialogue shares, built once per process (ModelBundle.dialogue):
    the flow plans from the knowledge base, the FAQ answerer, the action interface."""

    plans: dict[str, FlowPlan]
    faq: FaqSource | None
    actions: Actions | None


class PolicyStage(Stage):
    """The bot's replies on one call: a DialogueManager fed by the caller's intents.

    Turns run on ``executor`` (the bundle's NLU worker: a FAQ question is embedded with
    the same MiniLM), in order, so the dialogue's state is only touched by one turn at a
    time.
    """

    stage_name = "policy"

    def __init__(self, ctx: CallContext, leg: str, kit: DialogueKit | None,
                 executor: Executor | None = None):
        super().__init__(ctx, leg, executor)
        self._kit = kit or DialogueKit({}, None, None)
        self.manager = DialogueManager(self._kit.plans, ctx.settings.dialogue,
                                       faq=self._kit.faq, seed=ctx.call_id)
        self._replies = 0
        self._in_turn = asyncio.Lock()  # FIFO: turns in the order the caller spoke them
        self._keypad = Keypad()
        self._keypad_timer: asyncio.TimerHandle | None = None
        self._last: _Turn | None = None  # the last turn, while it may still be withdrawn
        self._resumed: _Turn | None = None  # withdrawn, waiting for the caller's next words
        if leg == "caller":
            ctx.keypad = self.key
            ctx.bus.subscribe(self._on_event)

    @property
    def bot_mode(self) -> bool:
        return self.ctx.settings.policy.mode == "bot"

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, EndFrame):
            await self.drain()  # the last turn's replies go out before the end
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, IntentDetected)
                and frame.event.leg == self.leg == "caller" and self.bot_mode):
            self._resumed = None  # the caller's next words came: the NLU joined them
            self.spawn(self._in_order(frame.event))

    # --- a reply the caller talks over at once

    def _on_event(self, event: Event) -> None:
        """On the call's bus: the caller cutting in on a reply, and what came of it."""
        if event.leg != self.leg or not self.bot_mode:
            return
        if isinstance(event, BotReplyInterrupted):
            self._withdraw(event)
        elif self._resumed is not None and (
                (isinstance(event, SpeechEnded) and event.too_short)
                or (isinstance(event, TranscriptFinal) and not event.text.strip())):
            # Only a noise cut in: the withdrawn reply is due after all.
            turn, self._resumed, self.ctx.resumes = self._resumed, None, ""
            self.spawn(self._in_order(turn.intent))

    def _withdraw(self, event: BotReplyInterrupted) -> None:
        """A caller who talks over the first ``policy.resume_within_s`` of the reply to
        their words had not finished: the dialogue goes back to before those words, and
        the NLU joins them to the caller's next (CallContext.resumes)."""
        turn = self._last
        if (turn is None or turn.reply_id != event.reply_id or turn.act not in WITHDRAWABLE
                or event.played_s > self.ctx.settings.policy.resume_within_s
                or self._in_turn.locked()):  # a turn under way owns the dialogue's state
            return
        self._last, self._resumed = None, turn
        self.manager.state = copy.deepcopy(turn.before)
        self.ctx.awaiting = turn.awaiting
        self.ctx.resumes = turn.intent.text
        self.ctx.bus.publish(TurnResumed(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=event.t_audio,
            reply_id=turn.reply_id, act=turn.act, text=turn.intent.text))

    def key(self, key: str, t_audio: float) -> None:
        """A key the caller pressed while the bot waits for a number (the call sends only
        those: CallContext.keys_a_number). A complete entry, or one left alone for
        ``policy.keypad_timeout_s``, is the caller's answer."""
        if self._keypad_timer is not None:
            self._keypad_timer.cancel()
            self._keypad_timer = None
        entry = self._keypad.press(key, self.ctx.awaited(self.leg))
        if entry is not None:
            self._keyed(entry, t_audio)
        elif self._keypad.keys:
            self._keypad_timer = asyncio.get_running_loop().call_later(
                self.ctx.settings.policy.keypad_timeout_s, self._keyed_late, t_audio)

    def _keyed_late(self, t_audio: float) -> None:
        self._keypad_timer = None
        entry = self._keypad.take()
        if entry is not None:
            self._keyed(entry, t_audio)

    def _keyed(self, entry: str, t_audio: float) -> None:
        # Said digit by digit, as the ASR writes a number read out: the dialogue parses
        # it, reads it back and the record masks it like any spoken number.
        text = " ".join(entry)
        self._resumed, self.ctx.resumes = None, ""  # keys are a new answer, not more words
        self.ctx.bus.publish(TranscriptFinal(call_id=self.ctx.call_id, leg=self.leg,
                                             t_audio=t_audio, t_start=t_audio, text=text,
                                             model="keypad"))
        self.spawn(self._in_order(IntentDetected(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=t_audio, intent=OUT_OF_SCOPE,
            text=text)))

    async def _in_order(self, intent: IntentDetected) -> None:
        async with self._in_turn:
            if self.bot_mode:  # the call may have gone to an agent while this turn waited
                await self._turn(intent)

    async def _turn(self, intent: IntentDetected) -> None:
        manager = self.manager
        # An unrecognised fragment ("Hi.", "Also,") with no question pending is a pause
        # mid-thought: wait for more rather than ask the caller to repeat. With a question
        # pending, short answers ("yes", "gold") are exactly what the dialogue needs.
        if (manager.state.awaiting is None and intent.intent == OUT_OF_SCOPE
                and len(intent.text.split()) < self.ctx.settings.policy.min_words_to_clarify):
            return
        before = copy.deepcopy(manager.state)
        awaiting = self.ctx.awaiting
        try:
            reply = await self.run_blocking(manager.turn, intent.text, intent.intent,
                                            intent.confidence)
        except Exception as exc:  # noqa: BLE001 - a failed turn is reported, the call goes on
            await self.fail(intent.t_audio, exc)
            return
        self._last = _Turn(intent, before, awaiting, self._replies + 1, reply.act)
        await self._say(reply, intent)
        if reply.action is None:
            return
        result = await self._perform(reply.action)
        if not self.bot_mode:
            return  # handed off while the action ran: the agent tells the caller
        await self._say(manager.action_done(result), intent)

    async def close(self) -> None:
        if self._keypad_timer is not None:
            self._keypad_timer.cancel()
        self.ctx.bus.unsubscribe(self._on_event)
        await super().close()

    async def _perform(self, request: ActionRequest) -> ActionResult:
        actions = self._kit.actions
        if actions is None:
            return ActionResult.failed("no action interface configured")
        request = ActionRequest(request.kind, request.params, self.ctx.call_id, request.flow)
        try:
            return await actions.perform(request)
        except ActionError as exc:
            return ActionResult.failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken back end goes to a human
            log.exception("action %s failed on call %s", request.kind, self.ctx.call_id)
            return ActionResult.failed(f"{type(exc).__name__}: {exc}")

    async def _say(self, reply: DialogueReply, intent: IntentDetected) -> None:
        if not reply.text and reply.handoff is None:
            return
        state = self.manager.state
        self._replies += 1
        self.ctx.awaiting = (reply.slot or "") if reply.act == "ask" else ""
        await self.emit(BotReply(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=intent.t_audio,
            latency_ms=self.clock.latency_ms(intent.t_audio), utterance=intent.utterance,
            reply_id=self._replies, text=reply.text,
            intent=(reply.flow or "") if reply.understood else "",
            act=reply.act, flow=reply.flow or "", slot=reply.slot or "",
            slots={k: s.value for k, s in state.slots.items()},
            confirmed=[k for k, s in state.slots.items() if s.confirmed],
            handoff=reply.handoff.reason if reply.handoff else "",
            handoff_detail=reply.handoff.detail if reply.handoff else "",
        ))
