"""VAD stage: turns speech probabilities into utterances on the audio clock.

Per scored window: speech lasting ``start_ms`` opens an utterance (SpeechStarted, stamped
at the start of that speech); the first non-speech window after speech is a pause
(SpeechPaused, which lets ASR decode speculatively); speech again is SpeechResumed; and
``stop_ms`` of silence ends the turn (SpeechEnded, stamped at the last speech sample).
"""

from __future__ import annotations

import time

from pipecat.frames.frames import EndFrame
from pipecat.processors.frame_processor import FrameDirection
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import (
    Event,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from switchboard.pipeline.frames import CallAudioFrame
from switchboard.pipeline.stages.base import Stage

RATE = 16000


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

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallAudioFrame) and frame.leg == self.leg:
            started = time.perf_counter()
            try:
                self.check_fault()
                events = self._analyse(frame)
            except Exception as exc:  # noqa: BLE001 - a scorer failure loses one frame
                events = []
                await self.fail(frame.t_audio, exc)
            await self.push_frame(frame, direction)
            for event in events:
                await self.emit(event)
            ms = (time.perf_counter() - started) * 1000
            await self.observe("vad", ms, frame.t_audio, publish=False)
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
            self._last_speech_end = t1
            if self._in_utt:
                if self._paused:
                    self._paused = False
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
            out.append(self._event(SpeechPaused, self._last_speech_end))
        if t1 - self._last_speech_end >= self._stop_s:
            out.extend(self._end())
        return out

    def _end(self) -> list[Event]:
        self._in_utt, self._paused = False, False
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
