"""Runs one simulated call end to end: source → graph → events, store, metrics, wav."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from switchboard.config import Settings
from switchboard.models.bundle import ModelBundle
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import Event
from switchboard.pipeline.graph import CallGraph
from switchboard.pipeline.store import CallStore
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import Recording

log = logging.getLogger(__name__)

#: Steps reported in the latency table, in pipeline order.
REPORTED_STEPS = ("vad", "asr_partial", "asr_final", "prosody", "emotion", "emotion_update",
                  "embedding", "retrieval", "intent", "nlu", "tts_first_audio",
                  "voice_to_voice")


@dataclass
class CallResult:
    """Everything one simulated call produced."""

    call_id: str
    source: str
    events: list[Event]
    context: CallContext
    stereo: np.ndarray
    status: str = "completed"
    error: str | None = None
    latency: dict[str, dict[str, float]] = field(default_factory=dict)

    def finals(self) -> list[str]:
        return [e.text for e in self.events if e.kind == "transcript_final" and e.text]

    def summary(self) -> dict:
        return {
            "call_id": self.call_id,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "transcript": " ".join(self.finals()),
            "latency_ms": self.latency,
        }


def latency_table(ctx: CallContext) -> dict[str, dict[str, float]]:
    table = {}
    budgets = ctx.settings.budgets.budgets
    for step in REPORTED_STEPS:
        p50, p95, n = ctx.metrics.percentiles(step)
        table[step] = {"p50": p50, "p95": p95, "n": n,
                       "budget": budgets[step].budget_ms if step in budgets else float("nan")}
    return table


async def run_call(
    recording: Recording,
    settings: Settings,
    bundle: ModelBundle,
    realtime: bool = True,
    subscribers=(),
    store: CallStore | None = None,
    call_id: str | None = None,
    leg: str = "caller",
) -> CallResult:
    """Play ``recording`` as one leg of a new call (the caller's by default; "agent" for an
    agent's earpiece microphone: analysed for stress, never answered by the bot) and
    collect what happened.

    Not in real time (``realtime=False``) nobody is waiting on the line: the anger score
    waits for the ASR's voice embedding however long the backlog makes it take.
    """
    if not realtime:
        settings = replace(settings, prosody=replace(
            settings.prosody, embedding_wait_ms=math.inf))
    call_id = call_id or uuid.uuid4().hex[:12]
    ctx = CallContext(call_id=call_id, settings=settings)
    for sub in subscribers:
        ctx.bus.subscribe(sub)
    if store is not None:
        store.begin(call_id, recording.path)
    status, error = "completed", None
    graph: CallGraph | None = None
    try:
        graph = CallGraph(ctx, bundle, leg)
        graph.prewarm()
        await graph.run(file_source.frames(recording, leg=leg, realtime=realtime))
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("call %s failed", call_id)
        raise
    finally:
        result = CallResult(
            call_id=call_id, source=recording.path, events=list(ctx.bus.history), context=ctx,
            stereo=graph.sink.stereo() if graph else np.zeros((0, 2), np.int16),
            status=status, error=error, latency=latency_table(ctx),
        )
        if store is not None:
            store.finish(call_id, result.events, status, error, result.summary())
    return result
