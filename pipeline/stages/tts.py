"""TTS stage: speaks each bot reply, sentence by sentence, as 20 ms reply-audio frames.

Sentences are synthesised in order on the stage's worker; the first one's audio goes out
as soon as it exists, which is the voice-to-voice moment. Rendered sentences are kept in a
small LRU cache, so the fixed phrases the policy opens with cost nothing after first use.
The ``first_sentence`` rung sheds the rest of long replies.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict

import numpy as np
from pipecat.processors.frame_processor import FrameDirection
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import BotReply, ReplyAudioStarted
from switchboard.pipeline.frames import EventFrame, ReplyAudioFrame
from switchboard.pipeline.stages.base import Stage
from switchboard.telephony.resample import float_to_pcm16

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
FRAME_SAMPLES = 320
CACHE_SIZE = 64


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


class TTSStage(Stage):
    """Piper synthesis of one leg's bot replies."""

    stage_name = "tts"

    def __init__(self, ctx: CallContext, leg: str, tts):
        super().__init__(ctx, leg)
        self._tts = tts
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def prewarm(self, phrases: list[str]) -> None:
        """Render fixed phrases ahead of the first call (blocking)."""
        for phrase in phrases:
            for sentence in sentences(phrase):
                self._render(sentence)

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, BotReply)
                and frame.event.leg == self.leg):
            await self.push_frame(frame, direction)
            await self._speak(frame.event)
            return
        await self.push_frame(frame, direction)

    def _render(self, sentence: str) -> np.ndarray:
        audio = self._cache.get(sentence)
        if audio is None:
            audio = self._tts.synthesize(sentence)
            self._cache[sentence] = audio
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(sentence)
        return audio

    async def _speak(self, reply: BotReply) -> None:
        parts = sentences(reply.text)
        if self.monitor.rung == "first_sentence":
            parts = parts[:1]
        started = time.perf_counter()
        first = True
        for sentence in parts:
            try:
                audio = await self.run_blocking(self._render, sentence)
            except Exception as exc:  # noqa: BLE001
                await self.fail(reply.t_audio, exc)
                return
            pcm = float_to_pcm16(audio)
            if first:
                tts_ms = (time.perf_counter() - started) * 1000
                v2v = self.clock.latency_ms(reply.t_audio)
                await self.emit(ReplyAudioStarted(
                    call_id=self.ctx.call_id, leg=self.leg, t_audio=reply.t_audio,
                    latency_ms=v2v, reply_id=reply.reply_id, tts_ms=tts_ms,
                    duration_s=len(audio) / 16000,
                ))
            for i in range(0, len(pcm), FRAME_SAMPLES):
                await self.push_frame(ReplyAudioFrame(
                    pcm=pcm[i : i + FRAME_SAMPLES].tobytes(), reply_id=reply.reply_id,
                    first=first and i == 0,
                ))
            if first:
                await self.observe("tts_first_audio", tts_ms, reply.t_audio)
                await self.observe("voice_to_voice", v2v, reply.t_audio)
                first = False
