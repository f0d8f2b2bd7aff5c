"""NLU stage: an intent and the top knowledge-base passages for each final transcript.

The transcript is embedded once (MiniLM) and the vector serves both halves: hybrid
retrieval over the knowledge base (``pipeline/retrieval.py``) and the intent classifier
trained from the deployment's example phrases (``pipeline/intents.py``), which answers
``out_of_scope`` when no intent is sure enough. On the ``lexical`` rung nothing is
embedded: BM25 and the n-gram classifier answer alone.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor

import numpy as np
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.intent import OUT_OF_SCOPE, IntentPrediction
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import IntentDetected, KnowledgeHits, Passage, TranscriptFinal
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.stages.base import Stage


class NLUStage(Stage):
    """Understands each final transcript of one leg."""

    stage_name = "nlu"

    def __init__(self, ctx: CallContext, leg: str, index, intents, embedder,
                 executor: Executor | None = None):
        super().__init__(ctx, leg, executor)
        self._index = index  # pipeline.retrieval.HybridIndex, or None without a KB
        self._intents = intents  # pipeline.intents.IntentDetector, or None without examples
        self._embedder = embedder  # models.embedder.MiniLMEmbedder, or None

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, TranscriptFinal)
                and frame.event.leg == self.leg and frame.event.text.strip()):
            await self._understand(frame.event)

    async def _understand(self, final: TranscriptFinal) -> None:
        text = final.text
        if self.ctx.resumes:  # the bot cut in on the caller: these words finish the last
            text, self.ctx.resumes = f"{self.ctx.resumes} {text}", ""
        try:
            (passages, prediction, timings), ms = await self.run_costed(
                self._analyse, text, self.monitor.rung == "lexical"
            )
        except Exception as exc:  # noqa: BLE001
            await self.fail(final.t_audio, exc)
            (passages, prediction, timings), ms = ([], None, {}), None
        common = dict(call_id=self.ctx.call_id, leg=self.leg, t_audio=final.t_audio,
                      latency_ms=self.clock.latency_ms(final.t_audio), utterance=final.utterance)
        await self.emit(KnowledgeHits(passages=passages, **common))
        await self.emit(IntentDetected(
            intent=prediction.intent if prediction else OUT_OF_SCOPE,
            confidence=prediction.confidence if prediction else 0.0,
            candidates=list(prediction.ranked) if prediction else [],
            text=text, **common,
        ))
        for step, step_ms in timings.items():
            await self.observe(step, step_ms, final.t_audio)
        if ms is not None:
            await self.observe("nlu", ms, final.t_audio)

    def _analyse(
        self, text: str, lexical: bool
    ) -> tuple[list[Passage], IntentPrediction | None, dict[str, float]]:
        """On the worker: embed once, retrieve, classify; with each part's cost in CPU ms
        (as :meth:`run_costed` counts the whole)."""
        opts = self.ctx.settings.nlu
        t0 = time.thread_time()
        vector: np.ndarray | None = None
        if not lexical and self._embedder is not None:
            vector = self._embedder.encode([text])[0]
        t1 = time.thread_time()
        passages = [] if self._index is None else self._index.search(
            text, opts.top_k, lexical_only=lexical, query_vector=vector
        )
        t2 = time.thread_time()
        prediction = None if self._intents is None else self._intents.detect(text, vector)
        t3 = time.thread_time()
        return passages, prediction, {
            "embedding": (t1 - t0) * 1000,
            "retrieval": (t2 - t1) * 1000,
            "intent": (t3 - t2) * 1000,
        }
