"""The graph as the live server uses it: per-leg variants, reply audio handed out as it
is produced, one phrase cache per process, and starting a call without stalling the loop."""

import asyncio
import time

import numpy as np
from switchboard.models.bundle import ModelBundle
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.graph import CallGraph
from switchboard.pipeline.policy import ACKNOWLEDGEMENT
from switchboard.pipeline.stages.asr import ASRStage
from switchboard.pipeline.stages.ingress import Ingress
from switchboard.pipeline.stages.prosody import ProsodyStage
from switchboard.pipeline.stages.vad import VADStage
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import load

from switchboard.session import run_source
from tests.helpers import generous_budgets


def test_agent_leg_builds_only_what_it_uses(settings_factory):
    """The agent's graph is VAD, ASR and prosody: building it loads no sentence
    embedder, knowledge base, intent classifier or voice (a fresh bundle, so nothing was
    loaded before)."""
    bundle = ModelBundle(settings_factory())
    graph = CallGraph(CallContext("a1", bundle.settings), bundle, "agent")
    graph.build()
    kinds = [type(p) for p in graph.processors[:-1]]
    assert kinds == [Ingress, VADStage, ASRStage, ProsodyStage]
    assert graph.processors[-1] is graph.sink and graph.tts is None
    assert (bundle._embedder, bundle._index, bundle._intents, bundle._tts) == (None,) * 4


def test_reply_audio_is_handed_out_as_produced(bundle, data, settings_factory):
    """``on_reply_audio`` gets every 20 ms frame of the bot's voice, in order, while the
    call runs; the stereo file's right channel holds the same audio."""
    rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
    ctx = CallContext("r1", generous_budgets(settings_factory()))
    got: list = []

    def player(frame):
        got.append((frame, len(ctx.bus.history)))

    result = asyncio.run(run_source(file_source.frames(rec, realtime=False), rec.path, ctx,
                                    bundle, on_reply_audio=player))
    assert got and all(len(f.pcm) == 640 for f, _ in got)
    starts = [e for e in result.events if e.kind == "reply_audio"]
    assert sum(f.first for f, _ in got) == len(starts) >= 1
    # Handed out while the call ran, not after: the first frame came before the end.
    assert got[0][1] < len(result.events)
    played = np.frombuffer(b"".join(f.pcm for f, _ in got), "<i2")
    right = result.stereo[:, 1]
    assert np.abs(played).max() > 1000
    assert np.array_equal(right[right != 0], played[played != 0])


def test_phrases_are_rendered_once_per_process(bundle, settings_factory):
    """Every call's TTS reads the one phrase cache of the bundle, where warming up renders
    the policy's fixed phrases: no call renders them again."""
    bundle.warm_up()
    cache = bundle.phrases()
    assert ACKNOWLEDGEMENT in cache
    graphs = [CallGraph(CallContext(f"p{i}", bundle.settings), bundle) for i in range(2)]
    for g in graphs:
        g.build()
    assert graphs[0].tts._phrases is cache and graphs[1].tts._phrases is cache
    before = cache.get(ACKNOWLEDGEMENT)
    asyncio.run(graphs[1].prewarm())
    assert cache.get(ACKNOWLEDGEMENT) is before  # not rendered again


def test_starting_a_call_does_not_stall_the_loop(data, settings_factory):
    """A call is running in real time when a second starts on the same loop; a heartbeat
    every 10 ms measures the loop's longest stall while the second is set up. Building
    the graph and rendering phrases on the loop stalled it 512 ms; off it, it moves.
    A fresh bundle, so the second call's start includes everything a first call pays."""
    settings = generous_budgets(settings_factory())
    bundle = ModelBundle(settings)
    bundle.asr()  # loading Whisper is start-up's job (warm_up), not a call's
    rec = load(data / "asr" / "whisper" / "jfk.flac")

    async def scenario():
        a = CallContext("A", settings)
        b = CallContext("B", settings)
        a_started, b_started = asyncio.Event(), asyncio.Event()
        a.bus.subscribe(lambda e: e.kind == "speech_started" and a_started.set())
        b.bus.subscribe(lambda e: e.kind == "speech_started" and b_started.set())
        call_a = asyncio.ensure_future(run_source(
            file_source.frames(rec, realtime=True), "A", a, bundle))
        await asyncio.wait_for(a_started.wait(), 60)
        stalls: list[float] = []
        stop = asyncio.Event()

        async def heartbeat():
            while not stop.is_set():
                t = time.perf_counter()
                await asyncio.sleep(0.01)
                stalls.append(time.perf_counter() - t - 0.01)

        beat = asyncio.ensure_future(heartbeat())
        call_b = asyncio.ensure_future(run_source(
            file_source.frames(rec, realtime=True), "B", b, bundle))
        await asyncio.wait_for(b_started.wait(), 60)
        stop.set()
        await beat
        for task in (call_a, call_b):
            task.cancel()
        await asyncio.gather(call_a, call_b, return_exceptions=True)
        return max(stalls)

    worst = asyncio.run(scenario())
    print(f"longest loop stall while a call started: {1000 * worst:.0f} ms")
    assert worst < 0.150, f"the loop stalled {1000 * worst:.0f} ms"


def test_the_caller_graph_answers_only_while_the_bot_is_active(bundle, data, settings_factory):
    """``policy.mode`` other than "bot" (an agent has the caller): the caller is still
    transcribed and understood, and the bot says nothing."""
    settings = generous_budgets(settings_factory(policy={"mode": "coach"}))
    rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
    ctx = CallContext("m1", settings)
    spoken: list = []
    result = asyncio.run(run_source(file_source.frames(rec, realtime=False), rec.path, ctx,
                                    bundle, on_reply_audio=spoken.append))
    kinds = {e.kind for e in result.events}
    assert {"transcript_final", "intent", "knowledge"} <= kinds
    assert not kinds & {"bot_reply", "reply_audio"} and spoken == []
    assert not result.stereo[:, 1].any()
