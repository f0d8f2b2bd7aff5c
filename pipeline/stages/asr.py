"""Streaming ASR stage: partial transcripts while the person speaks, a final at end of turn.

Whisper is not a streaming model, so streaming is built around it:
- *partials*: every ``partial_interval_ms`` of speech (``agent_partial_interval_ms`` on the
  agent's leg), the utterance so far is decoded
  (skipped while the leg's last partial is still running, while the shared Whisper queue
  has no idle worker beyond one kept for finals, so that no call's final waits behind
  partials, and on the ``no_partials`` rung);
- *speculative final*: at the first pause (VAD's SpeechPaused) the utterance is decoded at
  once, while VAD is still waiting to be sure the turn is over; if speech resumes the
  result is dropped, and if the turn ends at that pause it becomes the final with no
  further work, hiding the decode behind the end-of-turn wait. Its text also goes back to
  the VAD stage (``pipeline/turn.py``'s ``TurnText``): the turn's last words are part of
  the end-of-turn decision, so the decision waits for this decode whatever it concludes.
The ``fallback_model`` rung decodes with ``asr.fallback_model`` on a shorter window
(``asr.fallback_min_window_s``): a genuinely cheaper decode even when it is the same model
(tiny.en by default). Its results name the model and window ("tiny.en@8s"), so the prosody
stage, whose heads read embeddings of the main window, scores those utterances from the
voice features alone. Decodes run on the bundle's Whisper worker queue, shared by every
call (``ModelBundle.executor("asr")``).
While the bot waits for a number from the caller (its last reply asked for a phone
number, zip code, order ID or PIN: ``CallContext.awaited``), each decode of the caller's
leg is given ``asr.digit_prompt`` as Whisper's previous text, so the digits come out one
by one and the dialogue reads them right far more often (scripts/eval_digits); an answer
that comes out with no digit at all is decoded again without it, as the prompt makes
Whisper repeat some sentences ("Yes that's right. Yes that's right.").
Every final is followed by a ``VoiceEmbeddingFrame``: the encoder's summary of how the
utterance was said, which the prosody stage's anger and stress heads read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from pipecat.frames.frames import EndFrame
from pipecat.processors.frame_processor import FrameDirection
from switchboard.pipeline.audio_ring import AudioRing
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import (
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TranscriptFinal,
    TranscriptPartial,
)
from switchboard.pipeline.frames import CallAudioFrame, EventFrame, VoiceEmbeddingFrame
from switchboard.pipeline.spoken import expects_digits
from switchboard.pipeline.stages.base import Stage
from switchboard.pipeline.turn import turn_text

from switchboard.config import ASROptions

PRE_ROLL_S = 0.2  # VAD opens an utterance a little after the first sound
# Audio kept after the last speech sample. When VAD reports a pause it has already scored
# the next window (20-32 ms), so this much is always in the ring: the speculative final and
# a final decoded later see the same samples, and a call transcribes the same every run.
POST_ROLL_S = 0.02


def fallback_label(opts: ASROptions) -> str:
    """The ``model`` a fallback-rung result carries: model and minimum window."""
    return f"{opts.fallback_model}@{opts.fallback_min_window_s:g}s"


def decode_for(asr, audio, digit_prompt: str, **options):
    """``asr.decode(audio, **options)``, with ``digit_prompt`` as the previous text when the
    bot waits for a number; decoded again without it when no digit comes out."""
    if digit_prompt:
        result = asr.decode(audio, prompt=digit_prompt, **options)
        if any(c.isdigit() for c in result.text):
            return result
    return asr.decode(audio, **options)


class ASRStage(Stage):
    """Whisper transcription of one leg."""

    stage_name = "asr"

    def __init__(self, ctx: CallContext, leg: str, ring: AudioRing, bundle):
        super().__init__(ctx, leg, bundle.executor("asr"))
        self._ring = ring
        self._bundle = bundle
        opts = ctx.settings.asr
        bundle.asr(opts.model)  # load now: the first caller must not wait for it
        self._interval = (opts.agent_partial_interval_ms if leg == "agent"
                          else opts.partial_interval_ms) / 1000
        # Partials are best effort: with more than one Whisper worker, one stays free for
        # finals (a final waiting behind partials is what the caller hears as a slow bot).
        self._kept_for_finals = 1 if self._worker.workers > 1 else 0
        self._speculative = opts.speculative
        self._active = False
        self._utt = 0
        self._t_start = 0.0
        self._next_partial = 0.0
        self._partial: asyncio.Task | None = None
        self._spec: tuple[int, float, asyncio.Task] | None = None
        self._texts = turn_text(ctx, leg)  # where the VAD stage waits for a pause's words
        self._ready_at: dict[int, float] = {}  # utterance → when its speculative final was done

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallAudioFrame) and frame.leg == self.leg:
            t_now = frame.t_end
            if (self._active and self.monitor.rung == "full" and t_now >= self._next_partial
                    and self._spec is None and (self._partial is None or self._partial.done())
                    and self._worker.idle > self._kept_for_finals):
                self._next_partial = t_now + self._interval
                self._partial = self.spawn(self._run_partial(self._utt, self._t_start, t_now))
        elif isinstance(frame, EventFrame) and frame.event.leg == self.leg:
            self._on_event(frame.event)
        elif isinstance(frame, EndFrame):
            await self.drain()
        await self.push_frame(frame, direction)

    def _on_event(self, event) -> None:
        if isinstance(event, SpeechStarted):
            self._active, self._utt, self._t_start = True, event.utterance, event.t_audio
            self._next_partial = event.t_audio + self._interval
            self._spec = None
        elif isinstance(event, SpeechPaused) and self._speculative and self._active:
            # The final matters more than a partial: drop one still waiting for the worker.
            self._cancel_pending(self._partial)
            task = self.spawn(self._decode(self._t_start, event.t_audio + POST_ROLL_S,
                                            embed=True))
            self._spec = (event.utterance, event.t_audio, task)
            self._ready_at.clear()
            task.add_done_callback(
                lambda t, u=event.utterance: self._ready_at.__setitem__(u, time.monotonic()))
            task.add_done_callback(
                lambda t, u=event.utterance, at=event.t_audio: self._texts.offer(
                    u, at, t.result().text if not t.cancelled() and t.exception() is None
                    else None))
        elif isinstance(event, SpeechPaused):
            self._texts.offer(event.utterance, event.t_audio, None)  # no decode: no words
        elif isinstance(event, SpeechResumed):
            if self._spec is not None:
                self._cancel_pending(self._spec[2])
            self._spec = None
        elif isinstance(event, SpeechEnded):
            self._active = False
            spec, self._spec = self._spec, None
            if not event.too_short:
                self.spawn(self._run_final(event, spec))

    @staticmethod
    def _cancel_pending(task: asyncio.Task | None) -> None:
        """Cancel a decode task. One still queued for the worker never runs; one already
        running finishes on the worker (CTranslate2 cannot be interrupted) but is ignored."""
        if task is not None and not task.done():
            task.cancel()

    def _decode_now(self, audio, embed: bool):
        """On the worker: decode with the model of the rung the stage is on *now*, so a
        ladder move applies to the very next decode, even one queued before the move.
        ``embed``: a final, which also returns the voice embedding (the prosody stage's
        scoring window of it)."""
        opts = self.ctx.settings.asr
        last_s = self.ctx.settings.prosody.emotion_window_s if embed else None
        prompt = opts.digit_prompt if expects_digits(self.ctx.awaited(self.leg)) else ""
        if self.monitor.rung != "fallback_model":
            return decode_for(self._bundle.asr(opts.model), audio, prompt,
                              embed_last_s=last_s)
        result = decode_for(
            self._bundle.asr(opts.fallback_model), audio, prompt, embed_last_s=last_s,
            min_window_s=opts.fallback_min_window_s, margin_s=opts.fallback_window_margin_s)
        return replace(result, model=fallback_label(opts))

    async def _decode(self, t0: float, t1: float, embed: bool = False):
        audio = self._ring.slice(t0 - PRE_ROLL_S, t1)
        return await self.run_blocking(self._decode_now, audio, embed)

    async def _run_partial(self, utt: int, t0: float, t1: float) -> None:
        try:
            result = await self._decode(t0, t1)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001
            await self.fail(t1, exc)
            return
        if utt != self._utt or not self._active or not result.text:
            return  # the utterance ended meanwhile: its final supersedes this partial
        latency = self.clock.latency_ms(t1)
        await self.emit(TranscriptPartial(call_id=self.ctx.call_id, leg=self.leg, t_audio=t1,
                                          latency_ms=latency, utterance=utt, text=result.text))
        await self.observe("asr_partial", latency, t1)

    async def _run_final(self, ended: SpeechEnded, spec) -> None:
        t_end = ended.t_audio
        try:
            if spec is not None and spec[0] == ended.utterance and abs(spec[1] - t_end) < 1e-6:
                result = await spec[2]
                ready = self._ready_at.get(ended.utterance, time.monotonic())
            else:
                result = await self._decode(ended.t_start, t_end + POST_ROLL_S, embed=True)
                ready = time.monotonic()
        except Exception as exc:  # noqa: BLE001
            await self.fail(t_end, exc)
            # The prosody stage waits for this utterance's embedding: tell it there is none.
            await self.push_frame(VoiceEmbeddingFrame(self.leg, ended.utterance, "", None))
            return
        latency = self.clock.latency_ms(t_end)
        await self.emit(TranscriptFinal(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=t_end, latency_ms=latency,
            utterance=ended.utterance, text=result.text, t_start=ended.t_start,
            model=result.model,
        ))
        await self.push_frame(VoiceEmbeddingFrame(self.leg, ended.utterance, result.model,
                                                  result.voice_embedding))
        # The budget is the ASR's: speech end → transcript ready. The turn-taking stage
        # then holds the transcript until the turn is over (320 ms to 1.2 s of silence, by
        # design): that wait is the turn's and counts in voice_to_voice, and letting it
        # breach asr_final would move the ASR down its ladder for time it did not take.
        ready_ms = (ready - self.clock.captured_at(t_end)) * 1000.0
        await self.observe("asr_final", ready_ms, t_end)


