import pytest

from switchboard.config import load_budgets, load_settings


def test_budgets_file_names_every_stage():
    b = load_budgets()
    for step in ("vad", "asr_partial", "asr_final", "prosody", "nlu", "tts_first_audio",
                 "prompt_delivery", "voice_to_voice"):
        assert step in b.budgets
    assert b.ladder("asr") == ["full", "no_partials", "fallback_model"]


def test_overrides_and_unknown_options(tmp_path):
    s = load_settings(overrides={"asr": {"model": "base"}})
    assert s.asr.model == "base"
    with pytest.raises(ValueError, match="unknown option asr.nonsense"):
        load_settings(overrides={"asr": {"nonsense": 1}})
    cfg = tmp_path / "s.toml"
    cfg.write_text("[nope]\nx = 1\n")
    with pytest.raises(ValueError, match=r"unknown configuration section \[nope\]"):
        load_settings(cfg)
