"""Runs one call end to end: source → graph → events, store, metrics, wav.

A call ends in one of the :class:`CallEnd` states, and is recorded (from a ``finally``
block, so whatever ends it) with every event published until then. Cancelling the task
running a call stops its graph at once; the cancellation's message says why
(``task.cancel(CallEnd.HANGUP)``: the caller hung up; ``CallEnd.INTERRUPTED``: Ctrl-C),
and a cancellation without one (a server's tasks cancelled at shutdown) is recorded as
``shutdown``. The cancellation propagates once the call is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from switchboard.config import Settings
from switchboard.models.bundle import ModelBundle
from switchboard.pipeline.budgets import Metrics
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import Event
from switchboard.pipeline.frames import CallAudioFrame, ReplyAudioFrame
from switchboard.pipeline.graph import CallGraph
from switchboard.pipeline.store import CallStore
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import Recording

log = logging.getLogger(__name__)

#: Steps reported in the latency table, in pipeline order.
REPORTED_STEPS = ("vad", "asr_partial", "asr_final", "prosody", "emotion", "emotion_update",
                  "embedding", "retrieval", "intent", "nlu", "tts_first_audio",
                  "voice_to_voice")


class CallEnd(StrEnum):
    """How a call ended: the status its record carries."""

    COMPLETED = "completed"  # the audio ended and every result was published
    FAILED = "failed"  # an error stopped the call
    HANGUP = "hangup"  # the caller hung up (cancelled with this message)
    SHUTDOWN = "shutdown"  # the process is stopping (a cancellation without a message)
    INTERRUPTED = "interrupted"  # Ctrl-C on the command line


def end_status(exc: asyncio.CancelledError) -> CallEnd:
    """The end a cancellation stands for: its message, if it names one, else shutdown."""
    reason = exc.args[0] if exc.args else None
    if reason in (CallEnd.HANGUP, CallEnd.INTERRUPTED, CallEnd.SHUTDOWN):
        return CallEnd(reason)
    return CallEnd.SHUTDOWN


@dataclass
class CallResult:
    """Everything one call produced."""

    call_id: str
    source: str
    events: list[Event]
    context: CallContext
    stereo: np.ndarray
    status: str = CallEnd.COMPLETED
    error: str | None = None
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Where each stage ended on its degrade ladder.
    rungs: dict[str, str] = field(default_factory=dict)

    def finals(self) -> list[str]:
        return [e.text for e in self.events if e.kind == "transcript_final" and e.text]

    def summary(self) -> dict:
        return {
            "call_id": self.call_id,
            "source": self.source,
            "status": str(self.status),
            "error": self.error,
            "rungs": self.rungs,
            "transcript": " ".join(self.finals()),
            "latency_ms": self.latency,
        }


def latency_table(ctx: CallContext) -> dict[str, dict[str, float]]:
    """p50, p95 and count of each reported step in this call, with its budget."""
    table = {}
    budgets = ctx.settings.budgets.budgets
    for step in REPORTED_STEPS:
        p50, p95, n = ctx.samples.percentiles(step)
        table[step] = {"p50": p50, "p95": p95, "n": n,
                       "budget": budgets[step].budget_ms if step in budgets else float("nan")}
    return table


def offline(settings: Settings) -> Settings:
    """Settings for a recording played faster than real time: nobody waits on the line, so
    the anger score waits for the ASR's voice embedding and the end of turn for the pause's
    words however long the backlog makes them take; the results then do not depend on the
    machine's speed. (The words get a minute, not forever: a decode that never comes must
    not hang the simulation.)"""
    return replace(settings,
                   prosody=replace(settings.prosody, embedding_wait_ms=math.inf),
                   turn=replace(settings.turn, text_wait_ms=60_000))


async def run_call(
    recording: Recording,
    settings: Settings,
    bundle: ModelBundle,
    realtime: bool = True,
    subscribers: Iterable[Callable[[Event], None]] = (),
    store: CallStore | None = None,
    call_id: str | None = None,
    leg: str = "caller",
    metrics: Metrics | None = None,
) -> CallResult:
    """Play ``recording`` as one leg of a new call (the caller's by default; "agent" for an
    agent's earpiece microphone: analysed for stress, never answered by the bot) and
    collect what happened.

    Not in real time (``realtime=False``) nobody is waiting on the line: the anger score
    waits for the ASR's voice embedding however long the backlog makes it take.
    """
    if not realtime:
        settings = offline(settings)
    call_id = call_id or uuid.uuid4().hex[:12]
    ctx = CallContext(call_id=call_id, settings=settings, metrics=metrics or Metrics())
    return await run_source(file_source.frames(recording, leg=leg, realtime=realtime),
                            recording.path, ctx, bundle, subscribers=subscribers,
                            store=store, leg=leg)


def load_channels(path: str, legs: list[str]) -> dict[str, Recording]:
    """Each channel of a multi-channel recording as its own leg (``legs[i]`` is channel
    ``i``: ``["caller", "agent"]`` for a two-party call recorded in stereo), each
    converted to 16 kHz mono float32. Raises AudioFileError when the file cannot be read
    or its channel count is not ``len(legs)``."""
    import soundfile as sf

    from switchboard.telephony.audio_file import AudioFileError
    from switchboard.telephony.resample import INTERNAL_RATE, resample

    try:
        info = sf.info(str(path))
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({exc})") from exc
    if audio.shape[1] != len(legs):
        raise AudioFileError(f"{path}: {audio.shape[1]} channel(s), but --channels names "
                             f"{len(legs)} ({','.join(legs)})")
    if audio.size == 0:
        raise AudioFileError(f"{path}: empty audio (no samples)")
    fmt = f"{info.format}/{info.subtype}"
    return {leg: Recording(str(path), resample(np.ascontiguousarray(audio[:, i]), rate,
                                               INTERNAL_RATE).astype(np.float32),
                           rate, audio.shape[1], fmt)
            for i, leg in enumerate(legs)}


async def run_legs(
    recordings: dict[str, Recording],
    settings: Settings,
    bundle: ModelBundle,
    realtime: bool = True,
    subscribers: Iterable[Callable[[Event], None]] = (),
    store: CallStore | None = None,
    call_id: str | None = None,
    metrics: Metrics | None = None,
) -> CallResult:
    """Play a two-party recording, one recording per leg (``{"caller": ..., "agent":
    ...}``), as one call: each leg through its own graph (the caller's with NLU, the
    agent's VAD, ASR and stress), both on one bus, started together so their audio times
    line up. A human agent is on the call, so the bot does not answer (``policy.mode``
    is "agent"). ``stereo`` holds the caller (left) and the agent (right)."""
    from switchboard.pipeline.graph import LEGS

    unknown = set(recordings) - set(LEGS)
    if unknown or not recordings:
        raise ValueError(f"legs must be among {LEGS}, not {sorted(recordings)}")
    settings = replace(settings, policy=replace(settings.policy, mode="agent"))
    if not realtime:
        settings = offline(settings)
    call_id = call_id or uuid.uuid4().hex[:12]
    ctx = CallContext(call_id=call_id, settings=settings, metrics=metrics or Metrics())
    for sub in subscribers:
        ctx.bus.subscribe(sub)
    name = next(iter(recordings.values())).path
    if store is not None:
        store.begin(ctx.call_id, name)
    graphs = {leg: CallGraph(ctx, bundle, leg) for leg in recordings}
    status, error = CallEnd.COMPLETED, None
    runs = [asyncio.ensure_future(graphs[leg].run(
        file_source.frames(rec, leg=leg, realtime=realtime)))
        for leg, rec in recordings.items()]
    try:
        await asyncio.gather(*runs)
    except asyncio.CancelledError as exc:
        status = end_status(exc)
        raise
    except BaseException as exc:
        status, error = CallEnd.FAILED, f"{type(exc).__name__}: {exc}"
        log.exception("call %s failed", ctx.call_id)
        raise
    finally:
        for run in runs:
            if not run.done():
                run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        n = max(len(r.audio) for r in recordings.values())
        stereo = np.zeros((n, 2), dtype=np.int16)
        for col, leg in enumerate(("caller", "agent")):
            if leg in recordings:
                pcm = (np.clip(recordings[leg].audio, -1, 1) * 32767).astype(np.int16)
                stereo[: len(pcm), col] = pcm
        rungs = {f"{leg}:{stage}": rung for leg, g in graphs.items()
                 for stage, rung in g.rungs().items()}
        result = CallResult(call_id=ctx.call_id, source=name,
                            events=list(ctx.bus.history), context=ctx, stereo=stereo,
                            status=status, error=error, latency=latency_table(ctx),
                            rungs=rungs)
        if store is not None:
            store.finish(ctx.call_id, result.events, str(status), error, result.summary())
    return result


async def run_source(
    source: AsyncIterator[CallAudioFrame],
    name: str,
    ctx: CallContext,
    bundle: ModelBundle,
    subscribers: Iterable[Callable[[Event], None]] = (),
    store: CallStore | None = None,
    leg: str = "caller",
    on_reply_audio: Callable[[ReplyAudioFrame], None] | None = None,
) -> CallResult:
    """Run one leg's ``source`` (a file, or a live edge's frames) through a new graph,
    record the call under ``ctx.call_id`` however it ends, and return what it produced.

    Cancelled, it records the call (:func:`end_status`) and re-raises; the caller still
    has ``ctx.bus.history``.
    """
    for sub in subscribers:
        ctx.bus.subscribe(sub)
    if store is not None:
        store.begin(ctx.call_id, name)
    status, error = CallEnd.COMPLETED, None
    graph = CallGraph(ctx, bundle, leg, on_reply_audio=on_reply_audio)
    try:
        await graph.run(source)
    except asyncio.CancelledError as exc:
        status = end_status(exc)
        log.info("call %s ended: %s", ctx.call_id, status)
        raise
    except BaseException as exc:
        status, error = CallEnd.FAILED, f"{type(exc).__name__}: {exc}"
        log.exception("call %s failed", ctx.call_id)
        raise
    finally:
        result = CallResult(
            call_id=ctx.call_id, source=name, events=list(ctx.bus.history), context=ctx,
            stereo=graph.sink.stereo(), status=status, error=error,
            latency=latency_table(ctx), rungs=graph.rungs(),
        )
        if store is not None:
            store.finish(ctx.call_id, result.events, str(status), error, result.summary())
    return result
