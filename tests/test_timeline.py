from switchboard.pipeline.events import (
    BotReply,
    EmotionScore,
    StageLatency,
    TranscriptFinal,
    TurnResumed,
)

from switchboard.timeline import describe, latency_lines


def test_describe_and_skip():
    final = TranscriptFinal(call_id="c", leg="caller", t_audio=2.0, latency_ms=210,
                            text="hello", model="tiny.en")
    assert "FINAL" in describe(final) and "+210 ms" in describe(final)
    assert "bot reply" in describe(BotReply(call_id="c", leg="caller", t_audio=2.0, text="hi"))
    assert describe(StageLatency(call_id="c", leg="caller", t_audio=0.0)) is None
    assert "reply 3: the caller was still talking" in describe(
        TurnResumed(call_id="c", leg="caller", t_audio=2.5, reply_id=3, act="ask"))


def test_latency_table_marks_over_budget():
    lines = latency_lines({
        "asr_final": {"p50": 300.0, "p95": 400.0, "n": 3, "budget": 250.0},
        "nlu": {"p50": 10.0, "p95": 12.0, "n": 3, "budget": 30.0},
        "prosody": {"p50": float("nan"), "p95": float("nan"), "n": 0, "budget": 20.0},
    })
    assert lines[2].endswith("OVER") and lines[3].endswith("ok") and "no samples" in lines[4]


def test_emotion_line_says_what_it_read():
    both = EmotionScore(call_id="c", leg="caller", t_audio=2.0, anger=7.5, baseline_ready=True,
                        heads="voice+embedding")
    assert "anger 7.5/10" in describe(both) and "own baseline" in describe(both)
    assert "voice features only" not in describe(both)
    alone = EmotionScore(call_id="c", leg="caller", t_audio=2.0, heads="voice")
    assert "learning baseline, voice features only" in describe(alone)
