"""The streaming ASR stage (pipeline/stages/asr.py): how it schedules its decodes."""

import asyncio
import threading

import numpy as np
import pytest
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.bundle import ModelQueue
from switchboard.pipeline.audio_ring import AudioRing
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import SpeechEnded, SpeechStarted
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.stages.asr import ASRStage
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import load

from tests.helpers import generous_budgets, phone_line


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


NUMBER = "Two two zero two one two six two nine eight."


def _final_after(bundle, settings, audio: np.ndarray, awaiting: str,
                 leg: str = "caller") -> str:
    """The final transcript of ``audio`` (one utterance) on an ASR stage of a call whose
    bot last asked the caller for ``awaiting``."""

    async def run():
        ctx = CallContext("digits", settings)
        ctx.awaiting = awaiting
        ring = AudioRing(seconds=30.0)
        ring.append(0.0, audio)
        stage = ASRStage(ctx, leg, ring, bundle)
        t_end = len(audio) / 16000 - 0.1
        try:
            for event in (SpeechStarted(call_id="digits", leg=leg, t_audio=0.2, utterance=1),
                          SpeechEnded(call_id="digits", leg=leg, t_audio=t_end, utterance=1,
                                      t_start=0.2)):
                await stage.process_frame(EventFrame(event), FrameDirection.DOWNSTREAM)
            await stage.drain()
        finally:
            await stage.close()
        return next(e.text for e in ctx.bus.history if e.kind == "transcript_final")

    return asyncio.run(run())


def _said(settings, text: str) -> np.ndarray:
    """``text`` in the tests' steady Piper voice, through a phone leg, with a little
    silence either side."""
    from switchboard.models.tts import PiperTTS

    tts = PiperTTS(settings.tts.voice, length_scale=1.1, noise=False)
    pcm = np.frombuffer(phone_line(tts.synthesize(text)), "<i2").astype(np.float32)
    silence = np.zeros(3200, np.float32)
    return np.concatenate([silence, pcm / 32768.0, silence])


def test_while_the_bot_waits_for_a_number_the_digits_come_out_one_by_one(
        bundle, settings_factory):
    """Asked for the order ID, the caller reads it out: decoded with asr.digit_prompt, the
    dialogue reads the number. The same words after another question, on the agent's leg,
    or once an agent has the call are decoded plainly, and tiny.en groups the digits
    wrongly ("220-220-126-298")."""
    from switchboard.pipeline.spoken import normalise

    settings = generous_budgets(settings_factory())
    audio = _said(settings, NUMBER)
    prompted = _final_after(bundle, settings, audio, "order_id")
    assert normalise("order_id", prompted).value == "2202126298", prompted
    for awaiting, leg in (("customer_name", "caller"), ("", "caller"),
                          ("order_id", "agent"), ("order_id", "handed off")):
        if leg == "handed off":
            settings.policy.mode, leg = "agent", "caller"
        plain = _final_after(bundle, settings, audio, awaiting, leg)
        assert plain != prompted and normalise("order_id", plain) is None, (awaiting, plain)


def test_an_answer_without_a_digit_is_decoded_again_without_the_prompt(bundle,
                                                                       settings_factory):
    """The prompt makes Whisper repeat some sentences ("Yes that's right. Yes that's
    right."): an answer to a number question that holds no digit is what a plain decode
    hears."""
    settings = generous_budgets(settings_factory())
    audio = _said(settings, "Yes that's right.")
    assert _final_after(bundle, settings, audio, "order_id") == \
        _final_after(bundle, settings, audio, "")
