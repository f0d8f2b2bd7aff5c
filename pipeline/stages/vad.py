"""VAD stage: turns speech probabilities into utterances on the audio clock.

Per scored window: speech lasting ``start_ms`` opens an utterance (SpeechStarted, stamped
at the start of that speech); the first non-speech window after speech is a pause
(SpeechPaused, which lets ASR decode speculatively); speech again is SpeechResumed; and
the end of the turn is SpeechEnded, stamped at the last speech sample.

When the turn ends is decided by :mod:`switchboard.pipeline.turn` once the silence reaches
``stop_ms``: Smart Turn v3.2 on the turn's last 8 s of audio and the ASR's speculative
transcript of the pause (handed back through :class:`~switchboard.pipeline.turn.TurnText`)
set how much more silence to wait for; speech before that resumes the same turn. With
``turn.enabled`` off, ``stop_ms`` of silence alone ends the turn; on a leg the bot does
not answer (the agent's, outside ``turn.legs``) ``turn.complete_wait_ms`` does.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np
from pipecat.frames.frames import EndFrame
from pipecat.processors.frame_processor import FrameDirection
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import (
    Event,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    StageError,
)
from switchboard.pipeline.frames import CallAudioFrame
from switchboard.pipeline.stages.base import Stage
from switchboard.pipeline.turn import TurnDecider, TurnDecision, turn_text

log = logging.getLogger(__name__)

RATE = 16000
PRE_SPEECH_S = 0.5  # audio before the turn's first speech that Smart Turn hears (as pipecat)
KEEP_S = 8.0 + PRE_SPEECH_S  # Smart Turn reads the last 8 s
EPS = 1e-6  # window times are sums of 0.032 s: 6 windows must reach stop_ms = 192


class VADStage(Stage):
    """Voice activity detection for one leg (Silero, degrading to WebRTC VAD)."""

    stage_name = "vad"

    def __init__(self, ctx: CallContext, leg: str, scorer_factory):
        super().__init__(ctx, leg)
        self._factory = scorer_factory
        self._scorer = scorer_factory(self.monitor.rung)
        opts = ctx.settings.vad
        self._threshold = opts.confidence
        self._start_s = opts.start_ms / 1000
        self._stop_s = opts.stop_ms / 1000
        self._min_utt_s = opts.min_utterance_ms / 1000
        self._pending = bytearray()
        self._pending_t = 0.0
        self._run_start: float | None = None
        self._in_utt = False
        self._paused = False
        self._utt = 0
        self._utt_start = 0.0
        self._last_speech_end = 0.0
        self._turn = ctx.settings.turn
        self._decides = self._turn.enabled and leg in self._turn.legs
        if self._turn.enabled and not self._decides:
            self._stop_s = self._turn.complete_wait_ms / 1000
        self._decider = TurnDecider(self._turn, opts.stop_ms)
        self._texts = turn_text(ctx, leg)
        self._smart = None
        if self._decides and self._turn.smart_turn:
            # Loaded with the graph (built off the event loop), not in a call's first pause;
            # one session per process, shared by every call's VAD stage.
            from switchboard.models.smart_turn import shared_smart_turn

            self._smart = shared_smart_turn()
        self._audio: deque[tuple[float, bytes]] = deque()  # recent frames, for Smart Turn
        self._audio_s = 0.0
        self._decision: TurnDecision | None = None  # the current pause's, once decided
        self._ask = False  # the silence reached stop_ms: decide before the next window

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallAudioFrame) and frame.leg == self.leg:
            started = time.perf_counter()
            try:
                self.check_fault()
                self._keep(frame)
                events = self._analyse(frame)
            except Exception as exc:  # noqa: BLE001 - a scorer failure loses one frame
                events = []
                await self.fail(frame.t_audio, exc)
            await self.push_frame(frame, direction)
            for event in events:
                if isinstance(event, SpeechPaused):
                    # Before the ASR sees the pause: its transcript will be waited for.
                    self._texts.expect(event.utterance, event.t_audio)
                await self.emit(event)
            ms = (time.perf_counter() - started) * 1000
            await self.observe("vad", ms, frame.t_audio, publish=False)
            if self._ask:
                # Timed as its own step ("turn"): the per-frame VAD budget must not count
                # a decision, nor its wait for the words move the VAD down its ladder.
                self._ask = False
                for event in await self._decide(frame.t_end):
                    await self.emit(event)
            return
        if isinstance(frame, EndFrame) and self._in_utt:
            for event in self._close(self._pending_t):
                await self.emit(event)
        await self.push_frame(frame, direction)

    async def on_rung_change(self, rung: str) -> None:
        self._scorer = self._factory(rung)
        self._pending.clear()

    def _analyse(self, frame: CallAudioFrame) -> list[Event]:
        if not self._pending:
            self._pending_t = frame.t_audio
        self._pending += frame.pcm
        need = self._scorer.window_samples * 2
        events: list[Event] = []
        while len(self._pending) >= need:
            window = bytes(self._pending[:need])
            del self._pending[:need]
            t0 = self._pending_t
            t1 = t0 + self._scorer.window_samples / RATE
            self._pending_t = t1
            events.extend(self._step(self._scorer.score(window) >= self._threshold, t0, t1))
        return events

    def _event(self, cls, t: float, **kw) -> Event:
        return cls(call_id=self.ctx.call_id, leg=self.leg, t_audio=t,
                   latency_ms=self.clock.latency_ms(t), utterance=self._utt, **kw)

    def _step(self, speech: bool, t0: float, t1: float) -> list[Event]:
        if speech:
            t_pause, self._last_speech_end = self._last_speech_end, t1
            if self._in_utt:
                if self._paused:
                    self._paused = False
                    self._ask = False
                    if self._decision is not None:
                        self._decision.resumed, self._decision.t_resumed = True, t0
                    self._decision = None
                    self._texts.forget(self._utt, t_pause)
                    return [self._event(SpeechResumed, t0)]
                return []
            if self._run_start is None:
                self._run_start = t0
            if t1 - self._run_start >= self._start_s:
                self._in_utt, self._paused = True, False
                self._utt += 1
                self._utt_start = self._run_start
                return [self._event(SpeechStarted, self._run_start)]
            return []
        self._run_start = None
        if not self._in_utt:
            return []
        out: list[Event] = []
        if not self._paused:
            self._paused = True
            self._decision = None
            out.append(self._event(SpeechPaused, self._last_speech_end))
        silence = t1 - self._last_speech_end + EPS
        if not self._decides:
            if silence >= self._stop_s:
                out.extend(self._end())
        elif self._decision is None:
            if silence >= self._stop_s and not self._ask:
                self._ask = True  # decided (asynchronously) once this frame is out
        elif silence >= self._decision.deadline_s:
            self._decision.t_decided = t1
            out.extend(self._end())
        return out

    def _keep(self, frame: CallAudioFrame) -> None:
        """Keep the last ``KEEP_S`` of the leg's audio, for Smart Turn."""
        self._audio.append((frame.t_audio, frame.pcm))
        self._audio_s += len(frame.pcm) / (2 * RATE)
        while self._audio and self._audio_s - len(self._audio[0][1]) / (2 * RATE) >= KEEP_S:
            self._audio_s -= len(self._audio.popleft()[1]) / (2 * RATE)

    def _turn_audio(self, t_now: float) -> np.ndarray:
        """The turn's audio up to ``t_now`` (at most its last 8 s, from half a second before
        its first speech, as pipecat feeds Smart Turn): float32 at 16 kHz."""
        since = max(self._utt_start - PRE_SPEECH_S, t_now - 8.0)
        pcm = b"".join(p for t, p in self._audio if t + len(p) / (2 * RATE) > since
                       and t < t_now)
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0

    async def _decide(self, t_now: float) -> list[Event]:
        """The silence reached ``stop_ms``: score the turn's end, read the pause's words,
        set the deadline; end the turn now if it is already reached. Awaited in the frame
        flow, so the decision is taken on the audio up to ``t_now`` however long the
        score and the transcript take (the same in real time and in --fast runs)."""
        if not (self._in_utt and self._paused):
            return []
        utt, t_end = self._utt, self._last_speech_end
        probability, cost_ms = None, 0.0
        if self._smart is not None:
            try:
                probability, cost_ms = await self.run_costed(self._score,
                                                             self._turn_audio(t_now))
            except Exception as exc:  # noqa: BLE001 - without a score the words decide
                # Reported, but not counted against the VAD: Silero is not what failed.
                log.warning("smart turn failed on call %s: %s", self.ctx.call_id, exc)
                self.ctx.bus.publish(StageError(
                    call_id=self.ctx.call_id, leg=self.leg, t_audio=t_now, stage="turn",
                    error=f"{type(exc).__name__}: {exc}"))
        text = await self._texts.wait(utt, t_end, self._turn.text_wait_ms / 1000)
        deadline, reason = self._decider.decide(probability, text,
                                                self.ctx.awaited(self.leg))
        self._decision = TurnDecision(utt, t_end, deadline, reason, probability, text, cost_ms)
        self._texts.decisions.append(self._decision)
        await self.observe("turn", cost_ms, t_now, publish=False)
        if (self._in_utt and self._paused and self._utt == utt
                and t_now - t_end + EPS >= deadline):
            self._decision.t_decided = t_now
            return self._end()
        return []

    def _score(self, audio: np.ndarray) -> float:
        """On the stage's worker: Smart Turn's P(turn complete)."""
        return self._smart.probability(audio)

    def _end(self) -> list[Event]:
        self._in_utt, self._paused, self._ask = False, False, False
        self._texts.forget(self._utt, self._last_speech_end)
        too_short = self._last_speech_end - self._utt_start < self._min_utt_s
        return [self._event(SpeechEnded, self._last_speech_end, t_start=self._utt_start,
                            too_short=too_short)]

    def _close(self, t: float) -> list[Event]:
        """End an utterance cut off by the end of the stream."""
        out: list[Event] = []
        if not self._paused:
            self._last_speech_end = max(self._last_speech_end, t)
            out.append(self._event(SpeechPaused, self._last_speech_end))
        return out + self._end()
