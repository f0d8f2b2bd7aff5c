"""The streaming ASR stage (pipeline/stages/asr.py): how it schedules its decodes."""

import asyncio
import threading

import numpy as np
import pytest
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.bundle import ModelQueue
from switchboard.pipeline.audio_ring import AudioRing
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import SpeechStarted
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.stages.asr import ASRStage
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import load

from tests.helpers import generous_budgets


class _OwnQueue:
    """The bundle, with a Whisper queue of the test's own that it can keep busy."""

    def __init__(self, inner, queue: ModelQueue):
        self._inner, self._queue = inner, queue

    def executor(self, model):
        return self._queue

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _partials(bundle, data, settings, leg="caller", workers=1, busy_until_s=0.0,
              until_s=4.0):
    """JFK's first ``until_s`` through an ASR stage alone (one utterance from 0 s), with a
    job holding one worker of its queue until ``busy_until_s`` of audio. The partials."""
    queue = ModelQueue(workers, "asr-test")
    gate = threading.Event()

    async def run():
        ctx = CallContext("partials", settings)
        ring = AudioRing(seconds=30.0)
        stage = ASRStage(ctx, leg, ring, _OwnQueue(bundle, queue))
        await stage.process_frame(EventFrame(SpeechStarted(
            call_id="partials", leg=leg, t_audio=0.0, utterance=1)),
            FrameDirection.DOWNSTREAM)
        busy = queue.submit(gate.wait)
        try:
            rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
            async for frame in file_source.frames(rec, leg=leg, realtime=False):
                if frame.t_audio >= until_s:
                    break
                if frame.t_audio >= busy_until_s and not gate.is_set():
                    gate.set()
                    await asyncio.wrap_future(busy)
                ring.append(frame.t_audio, np.frombuffer(frame.pcm, "<i2") / 32768.0)
                ctx.clock(leg).record(frame.t_audio, frame.captured)
                await stage.process_frame(frame, FrameDirection.DOWNSTREAM)
                await asyncio.sleep(0)
                if gate.is_set():  # one decode at a time: the test is about when they start
                    await stage.drain()
        finally:
            gate.set()
            await stage.close()
        return [e for e in ctx.bus.history if e.kind == "transcript_partial"]

    try:
        return asyncio.run(run())
    finally:
        queue.shutdown()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_partial_is_not_queued_behind_a_busy_whisper_queue(bundle, data, settings_factory,
                                                             workers):
    """While another call's final runs on the shared Whisper queue and no worker beyond the
    one kept for finals is idle (with two workers, one is kept), the ASR stage starts no
    partial: queued, it would make the next final wait behind it. Once the final is done,
    partials resume."""
    settings = generous_budgets(settings_factory())
    partials = _partials(bundle, data, settings, workers=workers, busy_until_s=2.5)
    assert partials, "partials resume once a worker is free"
    assert all(p.t_audio >= 2.5 for p in partials), [p.t_audio for p in partials]


def test_the_agent_leg_has_partials_half_as_often(bundle, data, settings_factory):
    """The caller's partials come every partial_interval_ms (1 s), the agent's every
    agent_partial_interval_ms (2 s): nothing waits on them but the coach view."""
    settings = generous_budgets(settings_factory())
    caller = [p.t_audio for p in _partials(bundle, data, settings, until_s=5.0)]
    agent = [p.t_audio for p in _partials(bundle, data, settings, leg="agent", until_s=5.0)]
    assert len(caller) >= 3 and min(np.diff(caller)) >= 0.98, caller
    assert len(agent) >= 2 and min(np.diff(agent)) >= 1.98, agent
    assert len(agent) < len(caller)
