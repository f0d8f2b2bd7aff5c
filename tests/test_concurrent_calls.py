"""Calls are independent: a call whose ASR model keeps crashing ends cleanly and is recorded,
while another call running at the same time on the same loaded models is unaffected (its
own degrade ladders stay on top), and both report into the process's one registry."""

import asyncio
import copy

from switchboard.pipeline.budgets import Metrics
from switchboard.pipeline.store import CallStore
from switchboard.pipeline.wer import wer
from switchboard.telephony.audio_file import load

from switchboard.session import run_call
from tests.helpers import generous_budgets

JFK = ("And so, my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")
FAILING = ["asr:full", "asr:no_partials", "asr:fallback_model", "vad:silero"]
TOP = {"vad": "silero", "asr": "full", "prosody": "full", "nlu": "hybrid", "policy": "full",
       "tts": "full"}


def _settings(settings_factory):
    good = generous_budgets(settings_factory())
    bad = copy.deepcopy(good)
    bad.faults.fail_rungs = FAILING
    bad.budgets.degrade_after = 1  # one failure a rung: to the bottom within the call
    # Every pause a turn (silence alone decides), so JFK gives the failing ASR enough
    # utterances to walk its whole ladder.
    bad.turn.enabled = False
    return good, bad


def _count(metrics: Metrics, step: str) -> float:
    return metrics.registry.get_sample_value("switchboard_stage_latency_seconds_count",
                                             {"step": step}) or 0.0


def test_a_failing_call_does_not_disturb_another(data, bundle, settings_factory, tmp_path):
    good_settings, bad_settings = _settings(settings_factory)
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    metrics = Metrics()  # the process's one registry, as a server has
    good_rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
    bad_rec = load(data / "asr" / "whisper" / "jfk.flac")

    async def both():
        return await asyncio.gather(
            run_call(good_rec, good_settings, bundle, realtime=False, store=store,
                     call_id="ok", metrics=metrics),
            run_call(bad_rec, bad_settings, bundle, realtime=False, store=store,
                     call_id="bad", metrics=metrics),
        )

    good, bad = asyncio.run(both())
    assert wer(JFK, " ".join(good.finals())) < 0.05
    assert not [e for e in good.events if e.kind in ("stage_error", "stage_degraded")]
    assert good.rungs == TOP
    assert bad.finals() == [] and [e for e in bad.events if e.kind == "stage_error"]
    assert bad.rungs["asr"] == "fallback_model" and bad.rungs["vad"] == "webrtc"
    assert store.call("ok")["status"] == "completed"
    assert store.call("bad")["status"] == "completed"
    assert store.call("bad")["events"] == len(bad.events)
    # Both calls' observations are in the one registry; each call reports its own.
    for step in ("vad", "prosody"):
        n_good, n_bad = good.latency[step]["n"], bad.latency[step]["n"]
        assert n_good and n_bad and _count(metrics, step) == n_good + n_bad
    assert _count(metrics, "asr_final") == good.latency["asr_final"]["n"] > 0
    assert metrics.registry.get_sample_value("switchboard_stage_errors_total",
                                             {"stage": "asr"}) >= 1


def test_a_call_after_a_failing_one_starts_on_top(data, bundle, settings_factory):
    """Ladders belong to a call: a call started after another walked down its ladders
    (failing ASR and VAD) starts, and stays, on the top rungs."""
    good_settings, bad_settings = _settings(settings_factory)
    bad_rec = load(data / "asr" / "whisper" / "jfk.flac")
    bad = asyncio.run(run_call(bad_rec, bad_settings, bundle, realtime=False))
    assert bad.rungs["asr"] == "fallback_model"
    good_rec = load(data / "asr" / "pocketsphinx" / "goforward.wav")
    good = asyncio.run(run_call(good_rec, good_settings, bundle, realtime=False))
    assert good.rungs == TOP
    assert {e.model for e in good.events if e.kind == "transcript_final"} == {"tiny.en"}


def test_calls_starting_together_on_a_cold_bundle(data, settings_factory):
    """Three calls start at once on a bundle nothing was loaded into: their graphs load the
    models concurrently (each model once, under its own lock) and every call is transcribed
    as it is alone."""
    from switchboard.models.bundle import ModelBundle

    settings = generous_budgets(settings_factory())
    bundle = ModelBundle(settings)
    recs = [load(data / "asr" / "pocketsphinx" / "goforward.wav"),
            load(data / "asr" / "whisper" / "jfk_16k.wav"),
            load(data / "asr" / "asterisk_8k" / "1-for-am-2-for-pm.wav")]

    async def all_three():
        return await asyncio.gather(*[run_call(r, settings, bundle, realtime=False)
                                      for r in recs])

    results = asyncio.run(all_three())
    assert wer("go forward ten meters", " ".join(results[0].finals())) == 0
    assert wer(JFK, " ".join(results[1].finals())) < 0.05
    assert wer("Press 1 for A.M, or 2 for P.M.", " ".join(results[2].finals())) <= 1 / 7
    assert list(bundle._asr) == ["tiny.en"]  # one Whisper for all three
    assert all(r.rungs == TOP and r.status == "completed" for r in results)
