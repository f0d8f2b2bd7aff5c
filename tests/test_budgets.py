import pytest
from switchboard.pipeline.budgets import CallSamples, Metrics, StageMonitor

from switchboard.config import Budget, BudgetOptions


def _options(**kw) -> BudgetOptions:
    return BudgetOptions(
        budgets={"asr_final": Budget("asr_final", "asr", 250.0)},
        ladders={"asr": ["full", "no_partials", "fallback_model"]},
        window=10, degrade_after=3, recover_after=5, **kw,
    )


def test_breaches_walk_down_the_ladder_and_recover():
    metrics = Metrics()
    m = StageMonitor("asr", _options(), metrics)
    assert m.rung == "full"
    moves = [m.observe("asr_final", 400).moved_to for _ in range(3)]
    assert moves == [None, None, 1] and m.rung == "no_partials"
    # A new rung starts with a clean window: three more breaches to move again, not one.
    moves = [m.observe("asr_final", 400).moved_to for _ in range(3)]
    assert moves == [None, None, 2] and m.rung == "fallback_model"
    for _ in range(3):  # already at the bottom: stays
        m.observe("asr_final", 400)
    assert m.level == 2
    for _ in range(5):
        m.observe("asr_final", 100)
    assert m.rung == "no_partials"


def _value(metrics: Metrics, name: str, **labels) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_prometheus_export_counts_breaches_in_seconds():
    metrics, samples = Metrics(), CallSamples()
    m = StageMonitor("asr", _options(), metrics, samples)
    m.observe("asr_final", 100)
    m.observe("asr_final", 300)
    text = metrics.exposition()
    assert 'switchboard_stage_budget_breaches_total{step="asr_final"} 1.0' in text
    assert 'switchboard_stage_latency_seconds_count{step="asr_final"} 2.0' in text
    # The histogram is in seconds (its buckets are): 100 ms + 300 ms = 0.4 s.
    assert _value(metrics, "switchboard_stage_latency_seconds_sum",
                  step="asr_final") == pytest.approx(0.4)
    assert _value(metrics, "switchboard_stage_latency_seconds_bucket",
                  step="asr_final", le="0.1") == 1.0
    assert _value(metrics, "switchboard_stage_calls_on_rung", stage="asr", rung="full") == 1.0
    assert samples.percentiles("asr_final") == (100, 300, 2)


def test_one_registry_across_calls_and_a_report_per_call():
    """Two calls' monitors write into the process's one registry; each call's percentile
    report reads only its own samples; a moved call counts on its new rung until it ends."""
    metrics = Metrics()
    a, b = CallSamples(), CallSamples()
    ma, mb = StageMonitor("asr", _options(), metrics, a), StageMonitor("asr", _options(),
                                                                       metrics, b)
    ma.observe("asr_final", 100)
    for _ in range(3):
        mb.observe("asr_final", 400)
    assert _value(metrics, "switchboard_stage_latency_seconds_count", step="asr_final") == 4
    assert _value(metrics, "switchboard_stage_budget_breaches_total", step="asr_final") == 3
    assert a.percentiles("asr_final") == (100, 100, 1)
    assert b.percentiles("asr_final") == (400, 400, 3)
    assert ma.rung == "full" and mb.rung == "no_partials"  # each call its own ladder
    assert _value(metrics, "switchboard_stage_degrade_moves_total", stage="asr",
                  rung="no_partials") == 1
    on = {r: _value(metrics, "switchboard_stage_calls_on_rung", stage="asr", rung=r)
          for r in ("full", "no_partials")}
    assert on == {"full": 1, "no_partials": 1}
    ma.close()
    mb.close()
    mb.close()  # idempotent
    assert _value(metrics, "switchboard_stage_calls_on_rung", stage="asr",
                  rung="no_partials") == 0


def test_a_failing_rung_is_not_recovered_to():
    m = StageMonitor("asr", _options(), Metrics())
    for _ in range(3):
        m.failure()
    assert m.rung == "no_partials"
    for _ in range(50):
        m.observe("asr_final", 100)
    assert m.rung == "no_partials"
    for _ in range(3):  # slow, not failing: recovers back to no_partials, not full
        m.observe("asr_final", 400)
    assert m.rung == "fallback_model"
    for _ in range(5):
        m.observe("asr_final", 100)
    assert m.rung == "no_partials"


def test_the_vads_frames_move_it_only_on_sustained_slowness():
    """budgets.toml gives the VAD (timed per 20 ms frame) its own window: a stall of the
    loop (a few slow frames in a row) leaves it on Silero; a tenth of 5 s of frames over
    budget moves it to WebRTC VAD; the other stages keep the common policy."""
    from switchboard.config import load_budgets

    options = load_budgets()
    assert options.policy("asr") == (options.window, options.degrade_after,
                                     options.recover_after)
    vad = StageMonitor("vad", options, Metrics())
    budget = options.budgets["vad"].budget_ms
    stall = [vad.observe("vad", budget * 4).moved_to for _ in range(10)]  # 200 ms
    calm = [vad.observe("vad", budget / 5).moved_to for _ in range(240)]
    assert stall + calm == [None] * 250 and vad.rung == "silero"
    moved = [vad.observe("vad", budget * 4 if i % 5 == 0 else budget / 5).moved_to
             for i in range(250)]
    assert vad.rung == "webrtc" and moved.count(1) == 1


def test_at_the_budget_is_within_it():
    m = StageMonitor("asr", _options(), Metrics())
    assert not m.observe("asr_final", 250.0).breach
    assert m.observe("asr_final", 250.1).breach


def test_failures_count_over_the_last_steps_not_the_whole_call():
    """Three crashes within the window move the stage; three spread over a long healthy
    call do not (successes push old failures out of the window)."""
    m = StageMonitor("asr", _options(), Metrics())
    m.failure()
    for _ in range(25):
        m.observe("asr_final", 100)
    assert m.failure() is None and m.failure() is None and m.rung == "full"
    assert m.failure() == 1  # now three in the window
