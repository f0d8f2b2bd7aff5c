"""Builds one call's analysis graph and runs a leg's audio through it.

Caller leg, bot mode::

    Ingress → VAD → ASR → Prosody → NLU → Policy → TTS → ReplySink

Every stage is a pipecat FrameProcessor; the graph runs as a pipecat PipelineTask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from switchboard.pipeline.audio_ring import AudioRing
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.frames import PCM_BYTES_PER_SECOND, CallAudioFrame, ReplyAudioFrame
from switchboard.pipeline.intents import IntentExamplesError
from switchboard.pipeline.knowledge import KnowledgeBaseError
from switchboard.pipeline.policy import ACKNOWLEDGEMENT, NOT_UNDERSTOOD
from switchboard.pipeline.stages.asr import ASRStage
from switchboard.pipeline.stages.ingress import Ingress
from switchboard.pipeline.stages.nlu import NLUStage
from switchboard.pipeline.stages.policy import PolicyStage
from switchboard.pipeline.stages.prosody import ProsodyStage
from switchboard.pipeline.stages.tts import TTSStage
from switchboard.pipeline.stages.vad import VADStage

log = logging.getLogger(__name__)


class ReplySink(FrameProcessor):
    """End of the graph: keeps the leg's audio and the bot's reply audio, time-aligned.

    Reply audio is placed at the caller-audio time it was produced (never overlapping an
    earlier reply), so the stereo file it writes sounds like the call did.
    """

    def __init__(self, leg: str):
        super().__init__(name=f"sink:{leg}")
        self._leg = leg
        self._t_now = 0.0
        self._leg_audio: list[bytes] = []
        self._replies: list[tuple[float, bytes]] = []
        self._cursor = 0.0

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallAudioFrame) and frame.leg == self._leg:
            self._leg_audio.append(frame.pcm)
            self._t_now = frame.t_end
        elif isinstance(frame, ReplyAudioFrame):
            at = max(self._t_now, self._cursor) if frame.first else self._cursor
            self._replies.append((at, frame.pcm))
            self._cursor = at + len(frame.pcm) / PCM_BYTES_PER_SECOND
        await self.push_frame(frame, direction)

    def stereo(self) -> np.ndarray:
        """int16 (samples, 2): the leg's audio left, the bot's replies right."""
        left = np.frombuffer(b"".join(self._leg_audio), dtype="<i2")
        end = max([len(left)] + [int(at * 16000) + len(p) // 2 for at, p in self._replies])
        out = np.zeros((end, 2), dtype=np.int16)
        out[: len(left), 0] = left
        for at, pcm in self._replies:
            i = int(at * 16000)
            chunk = np.frombuffer(pcm, dtype="<i2")
            out[i : i + len(chunk), 1] = chunk
        return out


class CallGraph:
    """The analysis graph of one leg of one call."""

    def __init__(self, ctx: CallContext, bundle, leg: str = "caller"):
        self.ctx = ctx
        self.leg = leg
        ring = AudioRing(seconds=60.0)
        try:
            articles, index = bundle.knowledge()
        except KnowledgeBaseError as exc:
            log.warning("no knowledge base (%s): intents will be out_of_scope", exc)
            articles, index = [], None
        try:
            intents = bundle.intents()
        except IntentExamplesError as exc:
            log.warning("no intent examples (%s): intents will be out_of_scope", exc)
            intents = None
        self.tts = TTSStage(ctx, leg, bundle.tts())
        self.sink = ReplySink(leg)
        self.processors: list[FrameProcessor] = [
            Ingress(ctx, leg, ring),
            VADStage(ctx, leg, bundle.vad_scorer),
            ASRStage(ctx, leg, ring, bundle),
            ProsodyStage(ctx, leg, ring, bundle.emotion()),
            NLUStage(ctx, leg, index, intents, bundle.embedder()),
            PolicyStage(ctx, leg, articles),
            self.tts,
            self.sink,
        ]

    def prewarm(self) -> None:
        """Render the policy's fixed phrases so the first reply starts at once."""
        self.tts.prewarm([ACKNOWLEDGEMENT, NOT_UNDERSTOOD])

    async def run(self, source: AsyncIterator[CallAudioFrame]) -> None:
        """Feed ``source`` through the graph and return when every result is out."""
        task = PipelineTask(
            Pipeline(self.processors),
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000),
            enable_rtvi=False,
            enable_turn_tracking=False,
            idle_timeout_secs=None,
            cancel_on_idle_timeout=False,
        )
        runner = PipelineRunner(handle_sigint=False)

        async def feed() -> None:
            try:
                async for frame in source:
                    await task.queue_frame(frame)
            finally:
                await task.queue_frame(EndFrame())

        await runner.add_workers(task)
        await asyncio.gather(runner.run(), feed())
