"""One live call: its legs, who hears whom, the analysis graphs, and its single end.

A :class:`Call` owns a routing matrix and a mixer (telephony/routing.py, mixer.py), three
generated sources (the bot's voice, the coach's whispered prompts, hold music) and a
:class:`Leg` per party, each leg a :class:`~switchboard.telephony.edge.MediaEdge` of any
kind. Each human leg's audio feeds the mixer and, when analysed, its own analysis graph:
the caller's full graph (whose bot replies are played into the ``bot`` source), the
agent's VAD, ASR and stress. Events of every leg go to the call's one bus.

Barge-in lives here because only the call sees both sides: when the caller starts
speaking over a bot reply, the reply is flushed from the mixer at the next tick and
recorded as interrupted.

A call ends exactly once (:meth:`end`), whatever ends it: the caller's hang-up, a
transfer's failure, a crash, the server's shutdown. The end closes every leg (BYE), lets
the graphs publish what they still hold, and returns; the owner records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from switchboard.pipeline.budgets import StageMonitor
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import (
    BotReply,
    BotReplyInterrupted,
    CallStateChanged,
    DtmfReceived,
    EmotionScore,
    Event,
    IntentDetected,
    LegHold,
    LegJoined,
    LegLeft,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TranscriptFinal,
    TranscriptPartial,
)
from switchboard.pipeline.frames import CallAudioFrame, ReplyAudioFrame
from switchboard.pipeline.redact import MASK
from switchboard.telephony.edge import FRAME_BYTES, MediaEdge
from switchboard.telephony.hold import hold_music
from switchboard.telephony.mixer import LiveSource, Mixer, PlayoutSource
from switchboard.telephony.recorder import CallRecorder
from switchboard.telephony.routing import Role, Routing

from switchboard.config import Settings

log = logging.getLogger(__name__)

#: How long the graphs get, after the call's end, to publish what they still hold.
DRAIN_S = 5.0


class CallState(StrEnum):
    """Where a call is in its life."""

    SETUP = "setup"
    BOT = "bot"  # the bot answers the caller
    WAITING = "waiting"  # on hold, an agent being rung
    AGENT = "agent"  # caller and agent bridged
    ENDED = "ended"


@dataclass
class Leg:
    """One party of the call."""

    id: str
    role: Role
    edge: MediaEdge
    joined_at: float = field(default_factory=time.time)
    left_at: float | None = None
    end_reason: str | None = None
    frames_in: int = 0
    source: LiveSource = field(default_factory=LiveSource)
    #: Legs this party has put on hold (they hear hold music instead of it).
    holding: set[str] = field(default_factory=set)
    analysis: asyncio.Queue[bytes | None] | None = None


class Call:
    """A live call: legs, routing matrix, mixer, analysis graphs."""

    def __init__(self, call_id: str, channel: str, settings: Settings, bundle,
                 ctx: CallContext | None = None, graph_factory: Callable | None = None):
        # The policy's mode changes mid-call (the bot stops answering once an agent takes
        # over): the call gets its own copy of that section.
        settings = replace(settings, policy=replace(settings.policy))
        self.call_id = call_id
        self.channel = channel
        self.settings = settings
        self.bundle = bundle
        self.ctx = ctx or CallContext(call_id=call_id, settings=settings)
        self.ctx.settings = settings
        self.bus = self.ctx.bus
        self.started_at = time.time()
        self.state = CallState.SETUP
        self.end_reason: str | None = None
        self.error: str | None = None
        self.legs: dict[str, Leg] = {}
        self.routing = Routing()
        self.mixer = Mixer(self.routing)
        self.bot = self._generated("bot", Role.BOT, PlayoutSource())
        self.coach = self._generated("coach", Role.COACH, PlayoutSource())
        self.hold = self._generated("hold", Role.HOLD, PlayoutSource(loop_audio=hold_music()))
        self.bot.on_start = self._reply_started
        self._graph_factory = graph_factory or _default_graph
        self._graphs: dict[str, asyncio.Task] = {}
        self._pumps: dict[str, asyncio.Task] = {}
        self._stop = asyncio.Event()
        self._ended = asyncio.Event()
        self._mixer_task: asyncio.Task | None = None
        self._cut_replies: set[int] = set()
        self._reply_started_at: dict[int, float] = {}
        self._caller_talking = False  # the caller's VAD: in speech (not paused or ended)
        #: name → path of the call's WAV files once it has ended (recording on).
        self.recordings: dict[str, Path] = {}
        #: DTMF digits pressed on any leg: (leg id, digit); the owner decides what they do.
        self.on_dtmf: Callable[[str, str], None] | None = None
        #: Writes the call's audio when recording is on (:meth:`record_to`).
        self.recorder: CallRecorder | None = None
        #: The coach while an agent is on the call (pipeline/coach.py CallCoach): the
        #: agent page mutes it with ``call.coaching.mute(True)``.
        self.coaching = None
        #: A party other than the caller hung up; the owner decides what follows.
        self.on_leg_left: Callable[[Leg], None] | None = None
        # Steps timed across the whole call path (voice-to-voice, barge-in).
        self._call_monitor = StageMonitor("call", settings.budgets, self.ctx.metrics,
                                          self.ctx.samples)
        self.bus.subscribe(self._on_event)

    # --- life

    def start(self) -> None:
        """Start mixing (call once, from the event loop)."""
        self._mixer_task = asyncio.get_running_loop().create_task(self.mixer.run(self._stop))

    def end(self, reason: str, error: str | None = None) -> None:
        """End the call (once: later calls are ignored). :meth:`wait` finishes the job."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        self.error = error
        self._stop.set()

    @property
    def ending(self) -> bool:
        return self.end_reason is not None

    async def wait_end(self) -> None:
        """Return once the call has been ended (before its teardown)."""
        await self._stop.wait()

    async def wait(self) -> None:
        """Wait for the end, then tear down: close every leg, drain the graphs."""
        await self._stop.wait()
        try:
            await self._teardown()
        finally:
            self._ended.set()

    async def _teardown(self) -> None:
        self.set_state(CallState.ENDED, self.end_reason or "")
        for leg in list(self.legs.values()):
            await self._close_leg(leg, self.end_reason or "ended")
        if self._mixer_task is not None:
            await _finish(self._mixer_task, 1.0)
        graphs = list(self._graphs.values())
        if graphs:
            _done, pending = await asyncio.wait(graphs, timeout=DRAIN_S)
            for task in pending:
                log.warning("call %s: a graph did not drain in %.0f s; cancelled",
                            self.call_id, DRAIN_S)
                await _finish(task, 1.0)
        for task in list(self._pumps.values()):
            await _finish(task, 1.0)
        if self.recorder is not None:
            self.recordings = self.recorder.close()
        self._call_monitor.close()

    def set_state(self, state: CallState, reason: str = "") -> None:
        if state == self.state:
            return
        self.state = state
        self.publish(CallStateChanged(call_id=self.call_id, leg="call",
                                      t_audio=self.t_audio(), state=state, reason=reason))

    def record_to(self, recorder: CallRecorder) -> None:
        """Keep every party's voice and what they heard (before any leg joins)."""
        self.recorder = recorder
        self.mixer.taps.append(recorder.heard)

    # --- legs

    def add_leg(self, leg_id: str, role: Role, edge: MediaEdge, analyse: bool = True) -> Leg:
        """Join a party: its audio feeds the mixer (and its graph, if analysed)."""
        leg = Leg(leg_id, role, edge)
        if analyse:
            leg.analysis = asyncio.Queue()
        self.legs[leg_id] = leg
        self.routing.add(leg_id, role)
        self.mixer.add_source(leg_id, leg.source)
        self.mixer.add_sink(leg_id, edge.send)
        edge.on_dtmf = lambda digit: self._dtmf(leg, digit)
        edge.on_hold = lambda held: self._hold(leg, held)
        loop = asyncio.get_running_loop()
        self._pumps[leg_id] = loop.create_task(self._pump(leg), name=f"pump:{leg_id}")
        if analyse:
            on_reply = self._bot_audio if role is Role.CALLER else None
            self._graphs[leg_id] = loop.create_task(
                self._analyse(leg, on_reply), name=f"graph:{leg_id}")
        self.publish(LegJoined(call_id=self.call_id, leg=leg_id, t_audio=self.t_audio(),
                               role=role.value, peer=getattr(edge, "peer", "")))
        return leg

    async def remove_leg(self, leg_id: str, reason: str) -> None:
        """A party leaves (hang-up, transfer away); the call goes on."""
        leg = self.legs.get(leg_id)
        if leg is not None:
            await self._close_leg(leg, reason)

    async def _close_leg(self, leg: Leg, reason: str) -> None:
        if leg.left_at is not None:
            return
        leg.left_at = time.time()
        leg.end_reason = reason
        self.mixer.remove(leg.id)
        self.routing.remove(leg.id)
        if leg.analysis is not None:
            leg.analysis.put_nowait(None)
        try:
            await asyncio.wait_for(leg.edge.close(reason), 5.0)
        except Exception:  # noqa: BLE001 - a vanished peer cannot be closed politely
            log.warning("call %s: closing %s failed", self.call_id, leg.id, exc_info=True)
        self.publish(LegLeft(call_id=self.call_id, leg=leg.id, t_audio=self.t_audio(),
                             role=leg.role.value, reason=reason, media=_media_stats(leg)))

    async def _pump(self, leg: Leg) -> None:
        """The party's audio, frame by frame, to the mixer and its graph."""
        try:
            while leg.left_at is None:
                pcm = await leg.edge.receive()
                if pcm is None:
                    break
                if len(pcm) != FRAME_BYTES:
                    continue  # the edge's job; never let a bad frame reach the graph
                leg.frames_in += 1
                leg.source.push(pcm)
                if self.recorder is not None:
                    self.recorder.said(leg.id, pcm)
                if leg.analysis is not None:
                    leg.analysis.put_nowait(pcm)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken edge ends its leg, not the server
            log.warning("call %s: %s's audio failed: %s", self.call_id, leg.id, exc)
        if leg.left_at is None:
            self._party_left(leg)

    def _party_left(self, leg: Leg) -> None:
        """The party hung up: the caller's hang-up ends the call; the owner handles others."""
        if leg.role is Role.CALLER:
            self.end("hangup")
        else:
            asyncio.get_running_loop().create_task(self.remove_leg(leg.id, "hangup"))
            if self.on_leg_left:
                self.on_leg_left(leg)

    async def _analyse(self, leg: Leg, on_reply) -> None:
        try:
            graph = self._graph_factory(self.ctx, self.bundle, leg.role.value, on_reply)
            await graph.run(_frames(leg))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - analysis failing must not drop the caller
            log.exception("call %s: %s analysis failed", self.call_id, leg.id)
            self.error = self.error or f"{leg.id} analysis: {type(exc).__name__}: {exc}"

    # --- generated audio

    def _generated(self, node_id: str, role: Role, source: PlayoutSource) -> PlayoutSource:
        self.routing.add(node_id, role)
        self.mixer.add_source(node_id, source)
        return source

    def _bot_audio(self, frame: ReplyAudioFrame) -> None:
        if frame.reply_id in self._cut_replies or self.ending:
            return
        self.bot.extend(frame.pcm, tag=str(frame.reply_id))

    def _reply_started(self, tag: str, at: float) -> None:
        if tag.isdigit():  # a reply of the graph's, not an announcement
            self._reply_started_at[int(tag)] = at
            if self._caller_talking and self.state is CallState.BOT:
                # The caller went on talking while the reply was being made: it yields
                # as to a barge-in (after this tick: the mixer is mid-frame).
                asyncio.get_running_loop().call_soon(self.barge_in, self.t_audio())

    def say(self, pcm: bytes, tag: str = "announcement") -> None:
        """Play generated speech as the bot (to whoever hears the bot)."""
        self.bot.play(pcm, tag)

    def barge_in(self, t_audio: float) -> BotReplyInterrupted | None:
        """The caller spoke over the bot: stop its audio now; returns the record of it."""
        current = self.bot.current
        if current is None or not current.tag.isdigit():
            return None
        cut = self.bot.flush()
        reply_id = int(current.tag)
        self._cut_replies.update(int(p.tag) for p in cut if p.tag.isdigit())
        captured = self.ctx.clock("caller").captured_at(t_audio)
        stop_ms = (time.monotonic() - captured) * 1000.0
        event = BotReplyInterrupted(
            call_id=self.call_id, leg="caller", t_audio=t_audio, latency_ms=stop_ms,
            reply_id=reply_id, played_s=current.played * 0.02, stop_ms=stop_ms)
        self.publish(event)
        self._call_monitor.observe("barge_in", stop_ms)
        return event

    # --- events

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def t_audio(self) -> float:
        """Now, as a position in the caller's audio (seconds since the call began)."""
        caller = self.legs.get("caller")
        return caller.frames_in * 0.02 if caller else 0.0

    def _on_event(self, event: Event) -> None:
        if event.leg != "caller":
            return
        if isinstance(event, (SpeechStarted, SpeechResumed)):
            self._caller_talking = True
        elif isinstance(event, (SpeechPaused, SpeechEnded)):
            self._caller_talking = False
        if (isinstance(event, SpeechStarted) and self.state is CallState.BOT
                and self.bot.playing):
            self.barge_in(event.t_audio)

    def _hold(self, leg: Leg, held: bool) -> None:
        """A party put the others on hold: instead of that party, they hear hold music."""
        if leg.left_at is not None:
            return
        self.publish(LegHold(call_id=self.call_id, leg=leg.id, t_audio=self.t_audio(),
                             held=held))
        for other in self.legs.values():
            if other is leg or other.left_at is not None or other.role is Role.SUPERVISOR:
                continue
            if held and self.routing.hears(other.id, leg.id):
                self.routing.disconnect(other.id, leg.id)
                self.routing.connect(other.id, "hold")
                leg.holding.add(other.id)
            elif not held and other.id in leg.holding:
                self.routing.disconnect(other.id, "hold")
                self.routing.connect(other.id, leg.id)
        if not held:
            leg.holding.clear()

    def _dtmf(self, leg: Leg, digit: str) -> None:
        keyed = self.ctx.keys_a_number(leg.role.value)
        # A number keyed in is as private as one said: the record keeps that a key was
        # pressed, not which (the entry itself is stored as the caller's words, masked
        # like a spoken number).
        shown = MASK if keyed and digit.isdigit() else digit
        self.publish(DtmfReceived(call_id=self.call_id, leg=leg.id, t_audio=self.t_audio(),
                                  digit=shown))
        if keyed:
            self.ctx.keypad(digit, self.t_audio())
        elif self.on_dtmf:
            self.on_dtmf(leg.id, digit)

    def context(self) -> dict:
        """What an agent gets with a handed-off call: the transcript so far (the bot's
        replies as leg "bot"), the intent, the anger score and its trend, and the
        dialogue's record: the flow, the values collected (and which the caller
        confirmed), and why the dialogue handed off when it did."""
        transcript, intent, anger = [], None, []
        dialogue: dict | None = None
        pending: dict[str, TranscriptPartial] = {}  # per leg: words of an unfinished turn
        for e in self.bus.history:
            if isinstance(e, TranscriptPartial) and e.text:
                pending[e.leg] = e
            elif isinstance(e, TranscriptFinal) and e.text:
                pending.pop(e.leg, None)
                transcript.append({"leg": e.leg, "t": round(e.t_audio, 2), "text": e.text})
            elif isinstance(e, BotReply) and e.text:
                transcript.append({"leg": "bot", "t": round(e.t_audio, 2), "text": e.text})
                if e.act and e.act != "greet":
                    dialogue = {"flow": e.flow or None, "slots": dict(e.slots),
                                "confirmed": list(e.confirmed), "handoff": e.handoff or None,
                                "detail": e.handoff_detail}
            elif isinstance(e, IntentDetected) and e.leg == "caller" and e.intent:
                intent = {"intent": e.intent, "confidence": round(e.confidence, 3),
                          "text": e.text}
            elif isinstance(e, EmotionScore) and e.leg == "caller":
                anger.append({"t": round(e.t_audio, 2), "anger": round(e.anger, 1),
                              "rolling": round(e.rolling_anger, 1),
                              "baseline_ready": e.baseline_ready})
        # A caller who presses 0 mid-sentence has said something already: their words so
        # far, marked as such, rather than nothing until the turn's final comes.
        transcript += [{"leg": p.leg, "t": round(p.t_audio, 2), "text": p.text, "partial": True}
                       for p in pending.values()]
        caller = self.legs.get("caller")
        return {"call_id": self.call_id, "channel": self.channel,
                "caller": caller.edge.peer if caller else None,
                "transcript": transcript, "intent": intent,
                "anger": anger[-1] if anger else None, "anger_trend": anger[-10:],
                "dialogue": dialogue}


async def _frames(leg: Leg) -> AsyncIterator[CallAudioFrame]:
    """A leg's received audio as the graph's CallAudioFrames, stamped on arrival."""
    assert leg.analysis is not None
    seq = 0
    while True:
        pcm = await leg.analysis.get()
        if pcm is None:
            return
        yield CallAudioFrame(pcm=pcm, leg=leg.role.value, seq=seq, t_audio=seq * 0.02,
                             captured=time.monotonic())
        seq += 1


def _default_graph(ctx: CallContext, bundle, leg: str, on_reply):
    from switchboard.pipeline.graph import CallGraph

    return CallGraph(ctx, bundle, leg, on_reply_audio=on_reply)


async def _finish(task: asyncio.Task, timeout: float) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, timeout)


def _media_stats(leg: Leg) -> dict:
    """The leg's edge's ``media_stats()`` (telephony/edge.py), or {}: a record is kept
    whatever the edge does."""
    stats = getattr(leg.edge, "media_stats", None)
    if stats is None:
        return {}
    try:
        return dict(stats())
    except Exception:  # noqa: BLE001 - counters are worth less than the record
        log.warning("%s: media stats failed", leg.id, exc_info=True)
        return {}
