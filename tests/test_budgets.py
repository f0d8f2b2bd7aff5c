from switchboard.pipeline.budgets import Metrics, StageMonitor

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
    for _ in range(3):
        m.observe("asr_final", 400)
    assert m.rung == "fallback_model"
    for _ in range(3):  # already at the bottom: stays
        m.observe("asr_final", 400)
    assert m.level == 2
    for _ in range(5):
        m.observe("asr_final", 100)
    assert m.rung == "no_partials"


def test_prometheus_export_counts_breaches():
    metrics = Metrics()
    m = StageMonitor("asr", _options(), metrics)
    m.observe("asr_final", 100)
    m.observe("asr_final", 300)
    text = metrics.exposition()
    assert 'switchboard_stage_budget_breaches_total{step="asr_final"} 1.0' in text
    assert 'switchboard_stage_latency_seconds_count{step="asr_final"} 2.0' in text
    assert 'switchboard_stage_degrade_level{stage="asr"} 0.0' in text
    assert metrics.percentiles("asr_final")[2] == 2


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
