"""Helpers shared by tests."""


def generous_budgets(settings):
    """Budgets no loaded CI machine can breach: for tests of behaviour, not of speed.

    The anger score's wait for the ASR's voice embedding follows its budget, so it goes
    too: a slow decode must not turn a test's scores into voice-only ones.
    """
    for name, budget in settings.budgets.budgets.items():
        settings.budgets.budgets[name] = type(budget)(name, budget.stage, 1e9)
    settings.prosody.embedding_wait_ms = 1e9
    return settings


def run_within(coro, seconds: float):
    """``asyncio.run(coro)`` on a daemon thread, failing the test if it has not returned
    after ``seconds``: a task left pending makes ``asyncio.run`` hang at exit, and a hung
    test is not a red one."""
    import asyncio
    import threading

    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"asyncio.run did not return within {seconds} s (hung)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def phone_line(audio):
    """16 kHz float audio as the call center receives it from a phone: 8 kHz μ-law,
    decoded and brought back to 16 kHz, as PCM16 bytes (the evaluations' telephone leg,
    scripts/train_emotion.telephone)."""
    import sys
    from pathlib import Path

    from switchboard.telephony.resample import float_to_pcm16

    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    if scripts not in sys.path:
        sys.path.append(scripts)
    from train_emotion import telephone

    return float_to_pcm16(telephone(audio, 16000)).astype("<i2").tobytes()


async def until(condition, timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds, polling every 10 ms; fail after ``timeout`` s."""
    import asyncio

    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def started(processors):
    """A pipecat task over ``processors``, running: (the task, the run to await)."""
    import asyncio

    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineParams, PipelineTask

    task = PipelineTask(Pipeline(processors), params=PipelineParams(), enable_rtvi=False,
                        enable_turn_tracking=False, idle_timeout_secs=None,
                        cancel_on_idle_timeout=False)
    runner = PipelineRunner(handle_sigint=False)
    await runner.add_workers(task)
    return task, asyncio.ensure_future(runner.run())
