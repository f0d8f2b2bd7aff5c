"""NLU stage: an intent and the top knowledge-base passages for each final transcript.

The transcript is embedded once (MiniLM) and the vector serves both halves: hybrid
retrieval over the knowledge base (``pipeline/retrieval.py``) and the intent classifier
trained from the deployment's example phrases (``pipeline/intents.py``), which answers
``out_of_scope`` when no intent is sure enough. On the ``lexical`` rung nothing is
embedded: BM25 and the n-gram classifier answer alone.

The vector is prepared ahead where it can be: at each pause the ASR stage's speculative
transcript (:class:`~switchboard.pipeline.turn.TurnText`) is embedded while the VAD stage
decides whether the turn is over, and a final with the same words (the usual case: the
final reuses that decode when the caller said nothing more) finds its vector ready. The
embedding then leaves the reply's path; its cost is still counted in the ``embedding``
and ``nlu`` steps.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor

import numpy as np
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.intent import OUT_OF_SCOPE, IntentPrediction
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import IntentDetected, KnowledgeHits, Passage, TranscriptFinal
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.stages.base import Stage
from switchboard.pipeline.turn import turn_text


class NLUStage(Stage):
    """Understands each final transcript of one leg."""

    stage_name = "nlu"

    def __init__(self, ctx: CallContext, leg: str, index, intents, embedder,
                 executor: Executor | None = None):
        super().__init__(ctx, leg, executor)
        self._index = index  # pipeline.retrieval.HybridIndex, or None without a KB
        self._intents = intents  # pipeline.intents.IntentDetector, or None without examples
        self._embedder = embedder  # models.embedder.MiniLMEmbedder, or None
        # The words of the last pause and their vector being computed (see the docstring).
        self._prepared: tuple[str, asyncio.Task] | None = None
        if embedder is not None and ctx.settings.nlu.prepare_at_pause:
            turn_text(ctx, leg).listen(self._prepare)

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, TranscriptFinal)
                and frame.event.leg == self.leg and frame.event.text.strip()):
            await self._understand(frame.event)

    def _words(self, text: str) -> str:
        """What is understood of ``text``: after the caller's words the bot cut in on
        (the bot withdrew its reply; these words finish the last)."""
        return f"{self.ctx.resumes} {text}" if self.ctx.resumes else text

    def _prepare(self, text: str) -> None:
        """A pause's words: embed them now, in case the turn ends on them."""
        if self.monitor.rung == "lexical":
            return
        if self._prepared is not None:
            self._prepared[1].cancel()  # a later pause of the same turn: its words win
        words = self._words(text)
        task = self.spawn(self.run_blocking(self._embed, words))
        # A failure here is the final's to report (it embeds again): retrieved, not logged.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._prepared = (words, task)

    def _embed(self, text: str) -> tuple[np.ndarray, float]:
        """On the worker: the vector and its CPU ms (an injected delay, which stands for
        a slow model, is counted once: on the final's own step)."""
        t0 = time.thread_time()
        vector = self._embedder.encode([text])[0]
        return vector, (time.thread_time() - t0) * 1000

    async def _ready_vector(self, text: str) -> tuple[np.ndarray, float] | None:
        """The vector prepared for exactly ``text`` and its CPU ms, or None."""
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared[0] != text or self.monitor.rung == "lexical":
            if prepared is not None:
                prepared[1].cancel()
            return None
        try:
            return await prepared[1]
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
            return None
        except Exception:  # noqa: BLE001 - the final embeds again and reports its own failure
            return None

    async def _understand(self, final: TranscriptFinal) -> None:
        text = self._words(final.text)
        self.ctx.resumes = ""
        ready = await self._ready_vector(text)
        try:
            (passages, prediction, timings), ms = await self.run_costed(
                self._analyse, text, self.monitor.rung == "lexical", ready)
        except Exception as exc:  # noqa: BLE001
            await self.fail(final.t_audio, exc)
            (passages, prediction, timings), ms = ([], None, {}), None
        if ready is not None and ms is not None:  # the pause's embedding: the turn's cost
            ms += ready[1]
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
        self, text: str, lexical: bool, prepared: tuple[np.ndarray, float] | None = None
    ) -> tuple[list[Passage], IntentPrediction | None, dict[str, float]]:
        """On the worker: embed once (unless the vector and its cost came ``prepared``),
        retrieve, classify; with each part's cost in CPU ms (as :meth:`run_costed` counts
        the whole, less a prepared embedding)."""
        opts = self.ctx.settings.nlu
        vector, embed_ms = prepared or (None, 0.0)
        if prepared is None and not lexical and self._embedder is not None:
            vector, embed_ms = self._embed(text)
        t1 = time.thread_time()
        passages = [] if self._index is None else self._index.search(
            text, opts.top_k, lexical_only=lexical, query_vector=vector
        )
        t2 = time.thread_time()
        prediction = None if self._intents is None else self._intents.detect(text, vector)
        t3 = time.thread_time()
        return passages, prediction, {
            "embedding": embed_ms,
            "retrieval": (t2 - t1) * 1000,
            "intent": (t3 - t2) * 1000,
        }
