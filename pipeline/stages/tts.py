"""TTS stage: speaks each bot reply, sentence by sentence, as 20 ms reply-audio frames.

Sentences are rendered in order on the bundle's TTS worker (one Piper, shared by every
call); the first one's audio goes out as soon as it exists, which is the voice-to-voice
moment. Rendered sentences live in the process-wide phrase cache
(``ModelBundle.phrases()``), where the fixed phrases the policy opens with are rendered
once at start-up, so no call pays for them. Each frame is also handed, as it is produced,
to the graph's ``on_reply_audio`` callable (the live mixer). The ``first_sentence`` rung
sheds the rest of long replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.tts import split_sentences
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import BotReply, ReplyAudioStarted
from switchboard.pipeline.frames import EventFrame, ReplyAudioFrame
from switchboard.pipeline.stages.base import Stage
from switchboard.telephony.resample import float_to_pcm16

log = logging.getLogger(__name__)

FRAME_SAMPLES = 320

#: Kept under its old name for callers of the stage module.
sentences = split_sentences


class TTSStage(Stage):
    """Piper synthesis of one leg's bot replies."""

    stage_name = "tts"

    def __init__(self, ctx: CallContext, leg: str, phrases, executor: Executor | None = None,
                 on_audio: Callable[[ReplyAudioFrame], None] | None = None):
        super().__init__(ctx, leg, executor)
        self._phrases = phrases  # models.tts.PhraseCache, shared by every call
        self._on_audio = on_audio

    async def prewarm(self, phrases: list[str] | tuple[str, ...]) -> None:
        """Render fixed phrases missing from the shared cache, on the worker (a no-op once
        the bundle has warmed up)."""
        for phrase in phrases:
            for sentence in split_sentences(phrase):
                if sentence not in self._phrases:
                    await self.run_blocking(self._phrases.render, sentence)

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, BotReply)
                and frame.event.leg == self.leg):
            await self.push_frame(frame, direction)
            await self._speak(frame.event)
            return
        await self.push_frame(frame, direction)

    def _hand_over(self, frame: ReplyAudioFrame) -> None:
        if self._on_audio is None:
            return
        try:
            self._on_audio(frame)
        except Exception:  # noqa: BLE001 - a broken player must not silence the graph
            log.exception("on_reply_audio failed on call %s", self.ctx.call_id)

    async def _speak(self, reply: BotReply) -> None:
        parts = split_sentences(reply.text)
        if self.monitor.rung == "first_sentence":
            parts = parts[:1]
        started = time.perf_counter()
        first = True
        for sentence in parts:
            try:
                audio = await self.run_blocking(self._phrases.render, sentence)
            except Exception as exc:  # noqa: BLE001
                await self.fail(reply.t_audio, exc)
                return
            pcm = float_to_pcm16(audio)
            # Whole 20 ms frames: a live mixer plays frames, not odd-sized tails.
            pcm = np.pad(pcm, (0, -len(pcm) % FRAME_SAMPLES))
            if first:
                tts_ms = (time.perf_counter() - started) * 1000
                v2v = self.clock.latency_ms(reply.t_audio)
                await self.emit(ReplyAudioStarted(
                    call_id=self.ctx.call_id, leg=self.leg, t_audio=reply.t_audio,
                    latency_ms=v2v, reply_id=reply.reply_id, tts_ms=tts_ms,
                    duration_s=len(audio) / 16000,
                ))
            for i in range(0, len(pcm), FRAME_SAMPLES):
                frame = ReplyAudioFrame(pcm=pcm[i : i + FRAME_SAMPLES].tobytes(),
                                        reply_id=reply.reply_id, first=first and i == 0)
                self._hand_over(frame)
                await self.push_frame(frame)
            if first:
                await self.observe("tts_first_audio", tts_ms, reply.t_audio)
                await self.observe("voice_to_voice", v2v, reply.t_audio)
                first = False
