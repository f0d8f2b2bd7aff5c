"""The streaming ASR stage (pipeline/stages/asr.py): how it schedules its decodes."""


def test_a_partial_is_not_queued_behind_a_busy_whisper_queue(bundle, data, settings_factory):
    """While every worker of the shared Whisper queue is busy (other calls' finals), the
    ASR stage starts no partial: queued, it would make the next final wait behind it. Once
    a worker is free, partials resume."""
    import asyncio
    import threading

    import numpy as np
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

    class OneQueue:
        """The bundle, with a one-worker Whisper queue this test can keep busy."""

        def __init__(self, inner, queue):
            self._inner, self._queue = inner, queue

        def executor(self, model):
            return self._queue

        def __getattr__(self, name):
            return getattr(self._inner, name)

    queue = ModelQueue(1, "asr-test")
    gate = threading.Event()

    async def run():
        ctx = CallContext("partials", generous_budgets(settings_factory()))
        ring = AudioRing(seconds=30.0)
        stage = ASRStage(ctx, "caller", ring, OneQueue(bundle, queue))
        await stage.process_frame(EventFrame(SpeechStarted(
            call_id="partials", leg="caller", t_audio=0.0, utterance=1)),
            FrameDirection.DOWNSTREAM)
        busy = queue.submit(gate.wait)
        try:
            rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
            async for frame in file_source.frames(rec, realtime=False):
                if frame.t_audio >= 4.0:
                    break
                if frame.t_audio >= 2.5 and not gate.is_set():
                    gate.set()
                    await asyncio.wrap_future(busy)
                ring.append(frame.t_audio, np.frombuffer(frame.pcm, "<i2") / 32768.0)
                ctx.clock("caller").record(frame.t_audio, frame.captured)
                await stage.process_frame(frame, FrameDirection.DOWNSTREAM)
                await asyncio.sleep(0)
            await stage.drain()
        finally:
            gate.set()
            await stage.close()
        return [e for e in ctx.bus.history if e.kind == "transcript_partial"]

    try:
        partials = asyncio.run(run())
    finally:
        queue.shutdown()
    assert partials, "partials resume once a worker is free"
    assert all(p.t_audio >= 2.5 for p in partials), [p.t_audio for p in partials]
