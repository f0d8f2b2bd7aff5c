"""The call center: admits calls, runs each one, hands callers to human agents.

Every edge (SIP today; WebRTC and carrier media streams next) brings a caller here through
:meth:`CallCenter.admit` and :meth:`CallCenter.run_call`. A call starts in bot mode: the
bot greets the caller with the dialogue's opening line and holds the conversation
(pipeline/dialogue.py, in the caller's graph). When a rule of pipeline/escalation.py fires
(the caller asks for a person, presses 0, is not understood twice, their anger passes 7 of
10, or the dialogue cannot finish the request itself), the call is handed off:

1. the bot says it is connecting the caller (the dialogue's own words when it decided),
   stops answering, and the caller hears hold music (with a spoken reassurance now and
   then), never dead air;
2. free agents' phones are rung one after another (:class:`AgentDirectory`; each agent
   is reached through an :class:`AgentLine`, a SIP phone today), each for ``ring_s``;
3. the first to answer is bridged to the caller with the context ready (transcript so far,
   intent, anger: :meth:`Call.context`), and the bot's leg is dropped;
4. if nobody answers within ``wait_s``, the bot says so, records a callback request, and
   ends the call.

Admission control refuses a call (SIP 503 with Retry-After) when one more would push the
running calls past their budgets: the limit comes from the capacity benchmark
(``server.max_calls``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from switchboard.config import Settings
from switchboard.models.tts import split_sentences
from switchboard.pipeline.dialogue import FIXED_PHRASES, GREETINGS, greeting
from switchboard.pipeline.escalation import Escalation, HandoffReason
from switchboard.pipeline.events import BotReply, Event, HandoffRequested, HandoffUpdate
from switchboard.pipeline.summary import summarize
from switchboard.telephony.call import Call, CallState, Leg
from switchboard.telephony.edge import MediaEdge
from switchboard.telephony.recorder import CallRecorder
from switchboard.telephony.routing import Role

log = logging.getLogger(__name__)

#: A greeting (each call's own is the dialogue's, ``dialogue.greeting(call_id)``).
GREETING = GREETINGS[0]
CONNECTING = "Let me connect you with one of our agents. One moment, please."
STILL_WAITING = "Thanks for waiting. An agent will be with you shortly."
NO_AGENT = ("I'm sorry, all our agents are busy right now. We'll call you back as soon as "
            "one is free. Goodbye.")


class AgentLine(Protocol):
    """How one agent is reached (a SIP phone, later a browser page)."""

    async def ring(self, agent: str, context: dict) -> MediaEdge | None:
        """Ring ``agent``; their edge once they answer, None if they decline or cannot be
        reached. Cancelled (the caller hung up, the wait ran out): stop ringing."""
        ...


@dataclass
class AgentDirectory:
    """The agents who can take calls, and who is on one now."""

    line: AgentLine | None = None
    #: Agents in the order they are tried (``roster``, when set, is read each time
    #: instead: users added while the server runs); ``reachable`` says who can be rung
    #: right now (a registered phone).
    agents: list[str] = field(default_factory=list)
    roster: Callable[[], list[str]] | None = None
    reachable: Callable[[str], bool] = lambda agent: True
    busy: set[str] = field(default_factory=set)

    def free(self) -> list[str]:
        names = self.roster() if self.roster is not None else self.agents
        return [a for a in names if a not in self.busy and self.reachable(a)]


@dataclass
class CallRecord:
    """What the center keeps about a live call, for the API."""

    call: Call
    escalation: Escalation
    handoff: dict | None = None
    agent: str | None = None
    task: asyncio.Task | None = None
    #: A short number for the call while it is live (the board shows it; a SIP
    #: supervisor dials the feature code with it).
    number: str = ""


class CallCenter:
    """Runs every live call of the process."""

    def __init__(self, settings: Settings, bundle, store=None, metrics=None,
                 agents: AgentDirectory | None = None):
        self.settings = settings
        self.bundle = bundle
        self.store = store
        self.metrics = metrics
        self.agents = agents or AgentDirectory()
        self.calls: dict[str, CallRecord] = {}
        self.refused = 0
        self._phrases: dict[str, bytes] = {}
        self._closing = False
        self._next_number = 100

    # --- admission

    def admit(self) -> tuple[bool, int]:
        """(whether one more call fits, Retry-After seconds when it does not)."""
        limit = self.settings.server.max_calls
        if self._closing or (limit and len(self.calls) >= limit):
            self.refused += 1
            return False, self.settings.server.retry_after_s
        return True, 0

    # --- a call's life

    def new_call(self, channel: str, call_id: str | None = None) -> Call:
        """A call object, registered as live; hand it to :meth:`run_call`."""
        from switchboard.pipeline.context import CallContext

        call_id = call_id or uuid.uuid4().hex[:12]
        kwargs = {"metrics": self.metrics} if self.metrics is not None else {}
        ctx = CallContext(call_id=call_id, settings=self.settings, **kwargs)
        call = Call(call_id, channel, self.settings, self.bundle, ctx=ctx)
        record = CallRecord(call, Escalation(self.settings.escalation))
        record.number = self._number()
        self.calls[call_id] = record
        return call

    def _number(self) -> str:
        """The next short call number not in use (3 digits, then more when many are live)."""
        taken = {r.number for r in self.calls.values()}
        for _ in range(len(taken) + 1):
            self._next_number += 1
            if self._next_number >= max(1000, 10 * (len(taken) + 1)):
                self._next_number = 101
            if str(self._next_number) not in taken:
                break
        return str(self._next_number)

    def by_number(self, number: str) -> CallRecord | None:
        """The live call with this short number, if any."""
        return next((r for r in self.calls.values() if r.number == number), None)

    async def run_call(self, call: Call, caller: MediaEdge) -> Call:
        """Run a call from its caller's first frame to its end, and record it."""
        record = self.calls[call.call_id]
        record.task = asyncio.current_task()
        if self.store is not None:
            # Every event is recorded as it is published: a crash keeps the call so far.
            self.store.begin(call.call_id, caller.peer, channel=call.channel,
                             caller=caller.peer)
            call.bus.subscribe(self.store.append)
            folder = self.store.audio_path(call.call_id, "caller")
            if folder is not None:
                call.record_to(CallRecorder(folder.parent))
        call.on_dtmf = lambda leg, digit: self._dtmf(record, leg, digit)
        call.on_leg_left = lambda leg: self._leg_left(record, leg)
        call.bus.subscribe(lambda event: self._on_event(record, event))
        try:
            call.start()
            call.add_leg("caller", Role.CALLER, caller)
            call.routing.connect("caller", "bot")
            call.set_state(CallState.BOT, "answered")
            await self._greet(call)
            await call.wait()
        except asyncio.CancelledError:
            call.end("shutdown")
            await asyncio.shield(call.wait())
            raise
        except Exception as exc:  # noqa: BLE001 - a failing call must leave its record
            log.exception("call %s failed", call.call_id)
            call.end("failed", f"{type(exc).__name__}: {exc}")
            await call.wait()
        finally:
            self.calls.pop(call.call_id, None)
            if record.agent:
                self.agents.busy.discard(record.agent)
            self._record_end(record)
        return call

    async def _greet(self, call: Call) -> None:
        """Play the dialogue's opening line (prewarmed) and publish it, so the timeline,
        the store and the agent's context hold it as the bot's first words."""
        text = greeting(call.call_id)
        call.say(await self.phrase(text), "greeting")
        call.publish(BotReply(call_id=call.call_id, leg="caller", t_audio=call.t_audio(),
                              reply_id=0, text=text, act="greet"))

    def _record_end(self, record: CallRecord) -> None:
        if self.store is None:
            return
        call = record.call
        status = "failed" if call.end_reason == "failed" else "completed"
        summary = {"channel": call.channel, "end_reason": call.end_reason,
                   "handoff": record.handoff, "agent": record.agent,
                   "context": call.context()}
        try:  # the after-call summary (pipeline/summary.py) must never cost the record
            summary["after_call"] = summarize(
                (e.to_dict() for e in call.bus.history if e.kind != "stage_latency"),
                end_reason=call.end_reason or "", handoff=record.handoff,
                agent=record.agent)
        except Exception:  # noqa: BLE001
            log.exception("call %s: no after-call summary", call.call_id)
        for name, path in call.recordings.items():
            self.store.add_audio(call.call_id, name, path)
        self.store.end(call.call_id, status, reason=call.end_reason, error=call.error,
                       summary=summary)

    async def shutdown(self) -> None:
        """End every live call (BYE to every party) and wait for their records."""
        self._closing = True
        tasks = []
        for record in list(self.calls.values()):
            record.call.end("shutdown")
            if record.task is not None:
                tasks.append(record.task)
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.server.shutdown_grace_s + 5)

    # --- what happens in a call

    def _on_event(self, record: CallRecord, event: Event) -> None:
        if record.call.state is not CallState.BOT:
            return
        reason = record.escalation.on_event(event)
        if reason is not None:
            self._start_handoff(record, reason)

    def _dtmf(self, record: CallRecord, leg: str, digit: str) -> None:
        if leg != "caller" or record.call.state is not CallState.BOT:
            return
        reason = record.escalation.on_dtmf(digit, record.call.t_audio())
        if reason is not None:
            self._start_handoff(record, reason)

    def _leg_left(self, record: CallRecord, leg: Leg) -> None:
        # The agent hanging up ends a bridged call: the caller was talking to them.
        if leg.role is Role.AGENT and record.call.state is CallState.AGENT:
            record.call.end("agent_hangup")

    def _start_handoff(self, record: CallRecord, reason: HandoffReason) -> None:
        call = record.call
        call.set_state(CallState.WAITING, reason.rule)
        call.settings.policy.mode = "agent"  # the bot stops answering
        if reason.rule != "dialogue":
            # The dialogue's own handoff line says what CONNECTING would: let it play.
            call.bot.flush()
        context = call.context()
        record.handoff = {"rule": reason.rule, "detail": reason.detail,
                          "t_audio": reason.t_audio, "requested_at": time.time(),
                          "context": context, "status": "waiting"}
        call.publish(HandoffRequested(call_id=call.call_id, leg="caller", t_audio=reason.t_audio,
                                      rule=reason.rule, detail=reason.detail, context=context))
        asyncio.get_running_loop().create_task(self._handoff(record), name="handoff")

    async def _handoff(self, record: CallRecord) -> None:
        call = record.call
        opts = self.settings.handoff
        try:
            if record.handoff["rule"] == "dialogue":
                await self._bot_line_played(call, record.handoff["t_audio"])
            else:
                await self._announce(call, CONNECTING)
            if call.ending:  # the caller hung up during the announcement
                return
            call.routing.connect("caller", "hold")
            deadline = time.monotonic() + opts.wait_s
            reassure = asyncio.get_running_loop().create_task(self._reassure(call))
            try:
                edge, agent = await self._find_agent(record, deadline)
            finally:
                reassure.cancel()
            if call.ending:
                return
            if edge is None:
                await self._no_agent(record)
                return
            self._bridge(record, agent, edge)
        except Exception as exc:  # noqa: BLE001 - a failed handoff must not drop the caller
            log.exception("call %s: handoff failed", call.call_id)
            self._update(record, "failed", "", f"{type(exc).__name__}: {exc}")
            if not call.ending:
                await self._no_agent(record)

    async def _find_agent(self, record: CallRecord, deadline: float
                          ) -> tuple[MediaEdge | None, str | None]:
        call = record.call
        opts = self.settings.handoff
        tried: set[str] = set()
        while not call.ending and time.monotonic() < deadline:
            candidates = [a for a in self.agents.free() if a not in tried] or (
                self.agents.free() if tried else [])
            if not candidates or self.agents.line is None:
                await _wait_or_end(call, min(1.0, deadline - time.monotonic()))
                continue
            agent = candidates[0]
            tried.add(agent)
            self.agents.busy.add(agent)
            self._update(record, "ringing", agent)
            ring_for = min(opts.ring_s, deadline - time.monotonic())
            # The caller may have gone on talking since the request (or been mid-turn
            # when pressing 0): each ring carries the transcript as it stands now.
            record.handoff["context"] = call.context()
            edge = await _ring(self.agents.line, agent, call, record.handoff["context"],
                               ring_for)
            if edge is not None:
                if call.ending:
                    await edge.close("caller gone")
                    self.agents.busy.discard(agent)
                    return None, None
                return edge, agent
            self.agents.busy.discard(agent)
            self._update(record, "no_answer", agent)
        return None, None

    def _bridge(self, record: CallRecord, agent: str, edge: MediaEdge) -> None:
        call = record.call
        record.agent = agent
        call.routing.disconnect("caller", "hold")
        call.routing.disconnect("caller", "bot")
        call.bot.flush()
        call.add_leg("agent", Role.AGENT, edge)
        call.routing.connect("caller", "agent")
        call.routing.connect("agent", "caller")
        call.routing.connect("agent", "coach")
        call.set_state(CallState.AGENT, f"answered by {agent}")
        record.handoff["context"] = call.context()  # what the agent found on answering
        if self.settings.coach.enabled:
            self._start_coach(call)
        record.handoff["status"] = "answered"
        record.handoff["answered_at"] = time.time()
        self._update(record, "answered", agent)

    def _start_coach(self, call: Call) -> None:
        """Whisper-coaching for the agent (pipeline/coach.py); it stops with the call."""
        from switchboard.pipeline.coach_call import CallCoach
        from switchboard.pipeline.knowledge import KnowledgeBaseError

        try:
            articles = {a.id: a for a in self.bundle.knowledge()[0]}
        except KnowledgeBaseError as exc:
            log.warning("coach without knowledge cards: %s", exc)
            articles = {}
        CallCoach(call, self.phrase, articles).start()

    async def _no_agent(self, record: CallRecord) -> None:
        call = record.call
        call.routing.disconnect("caller", "hold")
        record.handoff["status"] = "callback_requested"
        self._update(record, "callback_requested", "", "no agent answered in time")
        if self.store is not None:
            caller = call.legs.get("caller")
            self.store.request_callback(call.call_id, caller.edge.peer if caller else "",
                                        record.handoff["context"])
        await self._announce(call, NO_AGENT)
        call.end("callback")

    async def _reassure(self, call: Call) -> None:
        every = self.settings.handoff.hold_message_every_s
        while not call.ending:
            await asyncio.sleep(every)
            if call.state is CallState.WAITING:
                call.say(await self.phrase(STILL_WAITING), "hold-message")

    def _update(self, record: CallRecord, status: str, agent: str, detail: str = "") -> None:
        call = record.call
        call.publish(HandoffUpdate(call_id=call.call_id, leg="caller", t_audio=call.t_audio(),
                                   status=status, agent=agent, detail=detail))

    async def _bot_line_played(self, call: Call, t_audio: float) -> None:
        """Wait until the bot's reply to the caller's utterance at ``t_audio`` (the
        dialogue's handoff line) has started and finished playing, at most ~20 s."""
        loop = asyncio.get_running_loop()
        started = loop.time()

        def audio_started() -> bool:
            return any(e.kind == "reply_audio" and e.t_audio >= t_audio
                       for e in reversed(call.bus.history[-50:]))

        while not call.ending and not audio_started() and loop.time() - started < 5.0:
            await asyncio.sleep(0.05)
        quiet_since = None
        while not call.ending and loop.time() - started < 20.0:
            # A reply is rendered sentence by sentence: a short gap between sentences is
            # not its end.
            if call.bot.playing:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = loop.time()
            elif loop.time() - quiet_since > 0.4:
                return
            await asyncio.sleep(0.05)

    async def _announce(self, call: Call, text: str) -> None:
        """Say ``text`` as the bot and return when it has been played."""
        pcm = await self.phrase(text)
        call.say(pcm, "announcement")
        await _wait_or_end(call, len(pcm) / 32000 + 0.1)

    async def phrase(self, text: str) -> bytes:
        """A fixed phrase in the bot's voice: rendered once per process (the bundle's
        phrase cache, shared with every call's TTS) on the TTS worker, off the loop."""
        pcm = self._phrases.get(text)
        if pcm is None:
            cache = self.bundle.phrases()
            loop = asyncio.get_running_loop()
            parts = [await loop.run_in_executor(self.bundle.executor("tts"), cache.render, s)
                     for s in split_sentences(text)]
            audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
            self._phrases[text] = pcm
        return pcm

    async def prewarm(self) -> None:
        """Render the fixed phrases before the first call: the center's own, and the
        dialogue's into the bundle's phrase cache (a no-op after ``ModelBundle.warm_up``),
        which a call's graph would otherwise render before it starts listening."""
        for text in (*GREETINGS, CONNECTING, STILL_WAITING, NO_AGENT):
            await self.phrase(text)
        cache = self.bundle.phrases()
        loop = asyncio.get_running_loop()
        for text in FIXED_PHRASES:
            for sentence in split_sentences(text):
                if sentence not in cache:
                    await loop.run_in_executor(self.bundle.executor("tts"), cache.render,
                                               sentence)

    # --- the API's view

    def live(self) -> list[dict]:
        """Every live call, for the JSON API."""
        return [self.describe(r) for r in self.calls.values()]

    def describe(self, record: CallRecord) -> dict:
        call = record.call
        return {"call_id": call.call_id, "number": record.number, "channel": call.channel,
                "state": call.state.value,
                "started_at": call.started_at,
                "duration_s": round(time.time() - call.started_at, 1),
                "legs": [{"id": leg.id, "role": leg.role.value, "peer": leg.edge.peer,
                          "joined_at": leg.joined_at, "left_at": leg.left_at}
                         for leg in call.legs.values()],
                "routing": call.routing.snapshot(), "agent": record.agent,
                "handoff": record.handoff, "context": call.context()}


async def _ring(line: AgentLine, agent: str, call: Call, context: dict,
                seconds: float) -> MediaEdge | None:
    """Ring ``agent`` for at most ``seconds``, giving up early if the call ends."""
    ring = asyncio.ensure_future(line.ring(agent, context))
    ended = asyncio.ensure_future(call.wait_end())
    try:
        done, _ = await asyncio.wait({ring, ended}, timeout=max(seconds, 0.0),
                                     return_when=asyncio.FIRST_COMPLETED)
        if ring not in done or ring.cancelled():
            return None
        if ring.exception() is not None:
            log.warning("ringing %s failed: %s", agent, ring.exception())
            return None
        return ring.result()
    finally:
        ended.cancel()
        if not ring.done():
            ring.cancel()
            await asyncio.gather(ring, return_exceptions=True)


async def _wait_or_end(call: Call, seconds: float) -> None:
    if seconds > 0:
        try:
            await asyncio.wait_for(call.wait_end(), seconds)
        except TimeoutError:
            pass

