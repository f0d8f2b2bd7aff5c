"""Builds one call's analysis graph and runs a leg's audio through it.

Caller leg (the policy stage, one dialogue per call, replies only while ``policy.mode``
is "bot")::

    Ingress → VAD → ASR → Prosody → NLU → Policy → TTS → ReplySink

Agent leg (stress from the voice, what was said; nothing understood or answered)::

    Ingress → VAD → ASR → Prosody → ReplySink

Every stage is a pipecat FrameProcessor; the graph runs as a pipecat PipelineTask. The
constructor only records what to build: the stages are built (a VAD session per call,
models loaded on first use) on a worker thread when :meth:`CallGraph.run` starts, so
starting a call never stalls the event loop that carries every other call's audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

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
from switchboard.pipeline.policy import FIXED_PHRASES
from switchboard.pipeline.stages.asr import ASRStage
from switchboard.pipeline.stages.base import Stage
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
        end = max([len(left)] + [round(at * 16000) + len(p) // 2 for at, p in self._replies])
        out = np.zeros((end, 2), dtype=np.int16)
        out[: len(left), 0] = left
        for at, pcm in self._replies:
            i = round(at * 16000)
            chunk = np.frombuffer(pcm, dtype="<i2")
            out[i : i + len(chunk), 1] = chunk
        return out


#: The legs a graph can be built for.
LEGS = ("caller", "agent")


class CallGraph:
    """The analysis graph of one leg of one call.

    ``on_reply_audio``: called (synchronously, on the event loop) with each
    :class:`ReplyAudioFrame` of the bot's voice as it is produced (20 ms, 16 kHz PCM16),
    for a live mixer to play; :class:`ReplySink` keeps them too, for the stereo file.
    """

    def __init__(self, ctx: CallContext, bundle, leg: str = "caller",
                 on_reply_audio: Callable[[ReplyAudioFrame], None] | None = None):
        if leg not in LEGS:
            raise ValueError(f"unknown leg {leg!r}; one of {LEGS}")
        self.ctx = ctx
        self.leg = leg
        self.bundle = bundle
        self.sink = ReplySink(leg)
        self.tts: TTSStage | None = None
        self.processors: list[FrameProcessor] = []
        self._on_reply_audio = on_reply_audio

    def build(self) -> None:
        """Build the leg's stages (blocking: call it off the event loop; :meth:`run` does).
        Idempotent. The agent leg loads nothing it does not use: no NLU, policy or TTS."""
        if self.processors:
            return
        ctx, bundle, leg = self.ctx, self.bundle, self.leg
        ring = AudioRing(seconds=60.0)
        front: list[FrameProcessor] = [
            Ingress(ctx, leg, ring),
            VADStage(ctx, leg, bundle.vad_scorer),
            ASRStage(ctx, leg, ring, bundle),
            ProsodyStage(ctx, leg, ring, bundle.emotion(), bundle.executor("prosody")),
        ]
        if leg == "caller":
            front += self._understanding(ctx, bundle, leg)
        self.processors = [*front, self.sink]

    def _understanding(self, ctx: CallContext, bundle, leg: str) -> list[FrameProcessor]:
        try:
            _articles, index = bundle.knowledge()
        except KnowledgeBaseError as exc:
            log.warning("no knowledge base (%s): intents will be out_of_scope", exc)
            index = None
        try:
            intents = bundle.intents()
        except IntentExamplesError as exc:
            log.warning("no intent examples (%s): intents will be out_of_scope", exc)
            intents = None
        self.tts = TTSStage(ctx, leg, bundle.phrases(), bundle.executor("tts"),
                            self._on_reply_audio)
        nlu_worker = bundle.executor("nlu")
        return [
            NLUStage(ctx, leg, index, intents, bundle.embedder(), nlu_worker),
            PolicyStage(ctx, leg, bundle.dialogue(), nlu_worker),
            self.tts,
        ]

    @property
    def stages(self) -> list[Stage]:
        return [p for p in self.processors if isinstance(p, Stage)]

    def rungs(self) -> dict[str, str]:
        """Where each stage is on its degrade ladder now."""
        return {s.stage_name: s.monitor.rung for s in self.stages}

    async def prewarm(self) -> None:
        """Render the dialogue's fixed phrases, if the process has not yet, so the first
        reply starts at once (off the loop; nothing to do after ModelBundle.warm_up)."""
        if self.tts is not None:
            await self.tts.prewarm(FIXED_PHRASES)

    async def run(self, source: AsyncIterator[CallAudioFrame]) -> None:
        """Feed ``source`` through the graph and return when every result is out.

        ``source`` may be a live iterator (frames arriving in real time from a network
        edge); its end ends the call's audio, and the graph then publishes what it still
        holds. Cancelling the task running this stops the graph at once: the pipeline is
        cancelled, every task it or a stage started is finished before the cancellation
        propagates, and the bus history keeps every event published so far. An exception
        from ``source`` stops the graph the same way and propagates.
        """
        run_task: asyncio.Task | None = None
        try:
            if not self.processors:
                built = asyncio.ensure_future(asyncio.to_thread(self.build))
                try:
                    await asyncio.shield(built)
                except asyncio.CancelledError:
                    # The thread cannot be stopped: let it finish, so the stages it made
                    # are closed below rather than left with their monitors counted live.
                    await asyncio.wait([built])
                    raise
            task = PipelineTask(
                Pipeline(self.processors),
                params=PipelineParams(audio_in_sample_rate=16000,
                                      audio_out_sample_rate=16000),
                enable_rtvi=False,
                enable_turn_tracking=False,
                idle_timeout_secs=None,
                cancel_on_idle_timeout=False,
            )
            runner = PipelineRunner(handle_sigint=False)
            await self.prewarm()
            await runner.add_workers(task)
            run_task = asyncio.get_running_loop().create_task(
                runner.run(), name=f"graph:{self.ctx.call_id}:{self.leg}")
            async for frame in source:
                await task.queue_frame(frame)
            await task.queue_frame(EndFrame())
            # Shielded: a cancellation lands here, and the except below stops the
            # pipeline in order rather than tearing the runner's task down mid-step.
            await asyncio.shield(run_task)
        except BaseException:
            if run_task is not None and not run_task.done():
                run_task.cancel()
                await asyncio.wait([run_task])
            raise
        finally:
            for stage in self.stages:
                await stage.close()
