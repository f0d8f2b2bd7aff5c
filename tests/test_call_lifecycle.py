"""How a call ends: cancelled (hang-up, shutdown), failed, or completed; a live source.

Every ending is recorded with every event published until then, and leaves nothing
running on the loop (a pending task makes ``asyncio.run`` hang at exit).
"""

import asyncio

import pytest
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.store import CallStore
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import load

from switchboard.session import CallEnd, run_source
from tests.helpers import generous_budgets, run_within


def _others() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def _cancel_after_first_final(ctx, run, reason):
    """Run ``run`` until the call's first final transcript, then cancel it."""
    got_final = asyncio.Event()
    ctx.bus.subscribe(lambda e: e.kind == "transcript_final" and got_final.set())
    task = asyncio.get_running_loop().create_task(run)
    await asyncio.wait_for(got_final.wait(), timeout=30)
    if reason is None:
        task.cancel()
    else:
        task.cancel(reason)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)


@pytest.mark.parametrize("reason, status", [(CallEnd.HANGUP, "hangup"), (None, "shutdown")])
def test_a_cancelled_live_call_stops_is_recorded_and_leaves_nothing_running(
        bundle, data, settings_factory, tmp_path, reason, status):
    """A live (real-time) source, cancelled mid-call: the call stops at once, its record
    says why, keeps every event so far, and no task of the graph is left behind."""
    rec = load(data / "asr" / "whisper" / "jfk.flac")  # 11 s: cancelled after ~3 s
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    # A first final after ~3 s: VAD silence ends JFK's first turn, as before #11.
    ctx = CallContext(call_id="c1", settings=generous_budgets(
        settings_factory(turn={"enabled": False})))

    async def scenario():
        source = file_source.frames(rec, realtime=True)
        started = asyncio.get_running_loop().time()
        await _cancel_after_first_final(ctx, run_source(source, rec.path, ctx, bundle,
                                                        store=store), reason)
        elapsed = asyncio.get_running_loop().time() - started
        await asyncio.sleep(0)
        return elapsed, _others()

    elapsed, left = run_within(scenario(), 30)
    assert left == []
    assert elapsed < 10  # stopped, not played to the end (11 s of audio + 1 s tail)
    kinds = [e.kind for e in ctx.bus.history]
    # Live, the first sentence (2.2 s) got partials while it was spoken, then its final.
    assert "transcript_partial" in kinds and "transcript_final" in kinds
    record = store.call("c1")
    assert record["status"] == status and record["error"] is None
    assert record["events"] == len(ctx.bus.history) > 5


def test_a_failing_source_is_recorded_as_failed(bundle, data, settings_factory, tmp_path):
    """The network edge raising mid-call: the call is recorded as failed with the error
    and its events, the error propagates, and nothing is left running."""
    rec = load(data / "asr" / "whisper" / "jfk.flac")
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    ctx = CallContext(call_id="c2", settings=generous_budgets(settings_factory()))

    async def broken_edge():
        async for frame in file_source.frames(rec, realtime=False):
            if frame.t_audio >= 6.0:
                raise ConnectionResetError("RTP stream lost")
            yield frame

    async def scenario():
        with pytest.raises(ConnectionResetError):
            await run_source(broken_edge(), "edge", ctx, bundle, store=store)
        await asyncio.sleep(0)
        return _others()

    assert run_within(scenario(), 30) == []
    record = store.call("c2")
    assert record["status"] == "failed" and "RTP stream lost" in record["error"]
    assert record["events"] == len(ctx.bus.history)
    assert any(e.kind == "speech_started" for e in ctx.bus.history)


def test_a_call_cancelled_while_its_graph_is_built(settings_factory, tmp_path):
    """Hung up before the graph was even built (a cold bundle takes seconds): the build
    finishes on its thread, the call is recorded as a hang-up, no stage stays counted as a
    live call on its rung, and nothing is left running."""
    from switchboard.models.bundle import ModelBundle

    settings = settings_factory()
    bundle = ModelBundle(settings)  # cold: building the graph loads the models
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    ctx = CallContext(call_id="c3", settings=settings)

    async def silence():
        while True:
            await asyncio.sleep(1)
            yield  # never reached before the cancellation

    async def scenario():
        task = asyncio.ensure_future(run_source(silence(), "edge", ctx, bundle, store=store))
        await asyncio.sleep(0.05)  # inside the build
        task.cancel(CallEnd.HANGUP)
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return _others()

    assert run_within(scenario(), 60) == []
    assert store.call("c3")["status"] == "hangup"
    live = [s for s in ctx.metrics.registry.collect()
            if s.name == "switchboard_stage_calls_on_rung"]
    assert live and all(sample.value == 0 for m in live for sample in m.samples)
