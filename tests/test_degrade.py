"""A stage slowed on purpose walks down its degrade ladder (ASR: partials off, then the
smaller model), and the breaches show in the Prometheus export."""

import asyncio

from switchboard.models.bundle import ModelBundle
from switchboard.telephony.audio_file import load

from switchboard.session import run_call
from tests.helpers import generous_budgets


def test_slow_asr_degrades(data, settings_factory):
    settings = settings_factory(
        turn={"enabled": False},  # several turns in JFK (pauses end them, as before #11)
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
    # The model is chosen when a decode runs, so after the move every decode but the one
    # possibly already running uses the fallback.
    after = [e for e in result.events[switched:] if e.kind == "transcript_final"]
    assert after and after[-1].model == "tiny.en@8s"  # the fallback model, on 8 s windows
    assert sum(e.model == "base" for e in after) <= 1
    assert any(e.model == "base" for e in result.events[:switched]
               if e.kind == "transcript_final")
    partials_after_first_move = [e for e in result.events[result.events.index(moves[0]):]
                                 if e.kind == "transcript_partial"]
    assert partials_after_first_move == []

    text = result.context.metrics.exposition()
    assert result.rungs["asr"] == "fallback_model"
    assert 'switchboard_stage_degrade_moves_total{rung="fallback_model",stage="asr"} 1.0' in text
    breaches = [line for line in text.splitlines()
                if line.startswith('switchboard_stage_budget_breaches_total{step="asr_final"}')]
    assert breaches and float(breaches[0].split()[-1]) >= 1


def test_within_budget_stays_on_top_rung(data, settings_factory, bundle):
    """Without breaches or failures nothing moves."""
    settings = generous_budgets(settings_factory())
    rec = load(data / "asr" / "pocketsphinx" / "goforward.wav")
    result = asyncio.run(run_call(rec, settings, bundle, realtime=False))
    assert not [e for e in result.events if e.kind == "stage_degraded"]
    assert result.finals()


def test_crashing_vad_model_falls_back_and_the_call_goes_on(data, settings_factory, tmp_path):
    """Silero raising on every window: after `degrade_after` failures the VAD moves to
    WebRTC, the call is still transcribed, and its record (errors included) is stored."""
    from switchboard.pipeline.store import CallStore

    settings = generous_budgets(settings_factory(faults={"fail_rungs": ["vad:silero"]}))
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    rec = load(data / "asr" / "pocketsphinx" / "goforward.wav")
    result = asyncio.run(run_call(rec, settings, ModelBundle(settings), realtime=False,
                                  store=store, call_id="crash1"))
    errors = [e for e in result.events if e.kind == "stage_error" and e.stage == "vad"]
    assert len(errors) == settings.budgets.degrade_after
    assert "injected fault" in errors[0].error
    moves = [e for e in result.events if e.kind == "stage_degraded" and e.stage == "vad"]
    assert [m.rung for m in moves] == ["webrtc"] and "failing" in moves[0].reason
    assert "forward" in " ".join(result.finals()).lower()
    assert 'switchboard_stage_errors_total{stage="vad"} 3.0' in result.context.metrics.exposition()
    record = store.call("crash1")
    assert record["status"] == "completed" and record["events"] == len(result.events)


def test_failing_asr_decode_still_records_the_call(data, settings_factory, tmp_path):
    """Every ASR rung failing: no transcript, but the call completes and is recorded."""
    from switchboard.pipeline.store import CallStore

    settings = generous_budgets(settings_factory(
        faults={"fail_rungs": ["asr:full", "asr:no_partials", "asr:fallback_model"]}))
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    rec = load(data / "asr" / "pocketsphinx" / "goforward.wav")
    result = asyncio.run(run_call(rec, settings, ModelBundle(settings), realtime=False,
                                  store=store, call_id="crash2"))
    assert result.finals() == []
    assert [e for e in result.events if e.kind == "stage_error" and e.stage == "asr"]
    assert store.call("crash2")["status"] == "completed"
    # No voice embedding without a decode: anger is still scored, from the voice alone.
    emotion = [e for e in result.events if e.kind == "emotion"]
    assert emotion and {e.heads for e in emotion} == {"voice"}


def test_failing_voice_analysis_leaves_understanding_and_replies(data, settings_factory,
                                                                 bundle):
    """Prosody and anger scoring raising on every rung: no voice scores, but the caller is
    still transcribed, understood and answered."""
    settings = generous_budgets(settings_factory(
        faults={"fail_rungs": ["prosody:full", "prosody:pitch_only"]}))
    rec = load(data / "asr" / "whisper" / "jfk.flac")
    result = asyncio.run(run_call(rec, settings, bundle, realtime=False))
    kinds = [e.kind for e in result.events]
    assert "prosody" not in kinds and "emotion" not in kinds
    assert any(e.kind == "stage_error" and e.stage == "prosody" for e in result.events)
    assert {"transcript_final", "intent", "knowledge", "bot_reply"} <= set(kinds)
    assert result.status == "completed"
