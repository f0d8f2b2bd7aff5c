"""Calls are independent: a call whose ASR model keeps crashing ends cleanly and is recorded,
while another call running at the same time on the same loaded models is unaffected."""

import asyncio
import copy

from switchboard.pipeline.store import CallStore
from switchboard.pipeline.wer import wer
from switchboard.telephony.audio_file import load

from switchboard.session import run_call
from tests.helpers import generous_budgets


def test_a_failing_call_does_not_disturb_another(data, bundle, settings_factory, tmp_path):
    good_settings = generous_budgets(settings_factory())
    bad_settings = copy.deepcopy(good_settings)
    bad_settings.faults.fail_rungs = ["asr:full", "asr:no_partials", "asr:fallback_model"]
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    good_rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
    bad_rec = load(data / "asr" / "pocketsphinx" / "goforward.wav")

    async def both():
        return await asyncio.gather(
            run_call(good_rec, good_settings, bundle, realtime=False, store=store, call_id="ok"),
            run_call(bad_rec, bad_settings, bundle, realtime=False, store=store, call_id="bad"),
        )

    good, bad = asyncio.run(both())
    reference = ("And so, my fellow Americans, ask not what your country can do for you, "
                 "ask what you can do for your country.")
    assert wer(reference, " ".join(good.finals())) < 0.2
    assert not [e for e in good.events if e.kind == "stage_error"]
    assert bad.finals() == [] and [e for e in bad.events if e.kind == "stage_error"]
    assert store.call("ok")["status"] == "completed"
    assert store.call("bad")["status"] == "completed"
    assert store.call("bad")["events"] == len(bad.events)
