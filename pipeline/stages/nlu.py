"""NLU stage: an intent and the top knowledge-base passages for each final transcript.

The intent is the best-matching knowledge-base flow when its hybrid score clears
``min_intent_score``, else ``out_of_scope``. (A trained intent classifier replaces this in
the understanding issue; the event it publishes stays the same.)
"""

from __future__ import annotations

import time

from pipecat.processors.frame_processor import FrameDirection

from pipeline.context import CallContext
from pipeline.events import IntentDetected, KnowledgeHits, TranscriptFinal
from pipeline.frames import EventFrame
from pipeline.stages.base import Stage

OUT_OF_SCOPE = "out_of_scope"


class NLUStage(Stage):
    """Understands each final transcript of one leg."""

    stage_name = "nlu"

    def __init__(self, ctx: CallContext, leg: str, index):
        super().__init__(ctx, leg)
        self._index = index  # pipeline.retrieval.HybridIndex, or None without a KB

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, TranscriptFinal)
                and frame.event.leg == self.leg and frame.event.text.strip()):
            await self._understand(frame.event)

    async def _understand(self, final: TranscriptFinal) -> None:
        opts = self.ctx.settings.nlu
        started = time.perf_counter()
        try:
            passages = [] if self._index is None else await self.run_blocking(
                self._index.search, final.text, opts.top_k, self.monitor.rung == "lexical"
            )
        except Exception as exc:  # noqa: BLE001
            await self.fail(final.t_audio, exc)
            passages = []
        ms = (time.perf_counter() - started) * 1000
        best = passages[0] if passages else None
        intent = best.id if best and best.score >= opts.min_intent_score else OUT_OF_SCOPE
        common = dict(call_id=self.ctx.call_id, leg=self.leg, t_audio=final.t_audio,
                      latency_ms=self.clock.latency_ms(final.t_audio), utterance=final.utterance)
        await self.emit(KnowledgeHits(passages=passages, **common))
        await self.emit(IntentDetected(intent=intent, confidence=best.score if best else 0.0,
                                       text=final.text, **common))
        await self.observe("nlu", ms, final.t_audio)
