"""A stage slowed on purpose walks down its degrade ladder (ASR: partials off, then the
smaller model), and the breaches show in the Prometheus export."""

import asyncio

from models.bundle import ModelBundle
from switchboard.session import run_call
from telephony.audio_file import load


def test_slow_asr_degrades(data, settings_factory):
    settings = settings_factory(
        asr={"model": "base", "fallback_model": "tiny.en"},
        faults={"extra_latency_ms": {"asr": 400}},
    )
    settings.budgets.degrade_after = 1
    settings.budgets.recover_after = 1000
    bundle = ModelBundle(settings)
    rec = load(data / "asr" / "whisper" / "jfk.flac")
    # Real time, as on a live call: in fast mode the whole file is in before any decode ends.
    result = asyncio.run(run_call(rec, settings, bundle, realtime=True))

    moves = [e for e in result.events if e.kind == "stage_degraded" and e.stage == "asr"]
    assert [m.rung for m in moves] == ["no_partials", "fallback_model"]
    assert all("over budget" in m.reason for m in moves)
    switched = result.events.index(moves[-1])
    # Decodes already running finish on the old model; utterances begun later use the new.
    begun_later = {e.utterance for e in result.events[switched:] if e.kind == "speech_started"}
    later = [e for e in result.events if e.kind == "transcript_final"
             and e.utterance in begun_later]
    assert later and all(e.model == "tiny.en" for e in later)
    assert any(e.model == "base" for e in result.events if e.kind == "transcript_final")
    partials_after_first_move = [e for e in result.events[result.events.index(moves[0]):]
                                 if e.kind == "transcript_partial"]
    assert partials_after_first_move == []

    text = result.context.metrics.exposition()
    assert 'switchboard_stage_degrade_level{stage="asr"} 2.0' in text
    breaches = [line for line in text.splitlines()
                if line.startswith('switchboard_stage_budget_breaches_total{step="asr_final"}')]
    assert breaches and float(breaches[0].split()[-1]) >= 1


def test_unslowed_stays_on_top_rung(data, settings_factory, bundle):
    rec = load(data / "asr" / "pocketsphinx" / "goforward.wav")
    result = asyncio.run(run_call(rec, settings_factory(), bundle, realtime=False))
    assert not [e for e in result.events if e.kind == "stage_degraded"]
