"""The turn-taking evaluation: premature replies counted on the audio clock."""

import csv
import sys

import pytest

from tests.conftest import ROOT

RECORDINGS = ("asr/whisper/jfk_16k.wav", "asr/asterisk_8k/vm-msgsaved.wav")


def _eval_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import eval_turns
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return eval_turns


@pytest.fixture
def two_recordings(data, tmp_path, monkeypatch):
    """A data folder holding JFK (one turn, rhetorical pauses) and a short prompt."""
    (tmp_path / "asr").mkdir()
    with open(data / "asr" / "refs.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"] in RECORDINGS]
    with open(tmp_path / "asr" / "refs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for sub in ("whisper", "asterisk_8k"):
        (tmp_path / "asr" / sub).symlink_to(data / "asr" / sub)
    (tmp_path / "kb").symlink_to(data / "kb")
    monkeypatch.setenv("SWITCHBOARD_DATA", str(tmp_path))
    return tmp_path


def test_parse_setting():
    mod = _eval_module()
    assert mod.parse_setting("vad500:turn.enabled=false,vad.stop_ms=500") == (
        "vad500", {"turn": {"enabled": False}, "vad": {"stop_ms": 500}})
    assert mod.parse_setting("t:turn.threshold=0.7") == ("t", {"turn": {"threshold": 0.7}})
    assert mod.parse_setting("default:") == ("default", {})


@pytest.mark.slow
def test_premature_replies_before_and_after(two_recordings, tmp_path):
    """VAD silence alone answers JFK at his pauses (premature: more speech follows);
    with the turn decision he gets one reply, after his last word. The prompt's turn ends
    within the maximum wait either way."""
    out = tmp_path / "eval_turns.json"
    result = _eval_module().main(["--setting", "vad192:turn.enabled=false",
                                  "--setting", "default:", "--tail-s", "2",
                                  "--concurrent", "1", "--json", str(out)])
    assert out.is_file()
    vad, turn = result["settings"]
    assert (vad["recordings"], turn["recordings"]) == (2, 2)
    jfk_vad = next(r for r in vad["per_recording"] if r["path"].endswith("jfk_16k.wav"))
    jfk = next(r for r in turn["per_recording"] if r["path"].endswith("jfk_16k.wav"))
    early = [r for r in jfk_vad["replies"] if r["premature"]]
    assert early and all(r["trigger"] < jfk_vad["last_speech"] for r in early)
    assert early[0]["trigger"] < 3.0  # after "my fellow Americans"
    assert vad["premature"] == len(early) and vad["premature_per_100_turns"] == pytest.approx(
        100 * len(early) / 2, abs=0.05)
    assert turn["premature"] == 0 and turn["recordings_with_premature"] == 0
    assert [r["premature"] for r in jfk["replies"]] == [False]
    assert jfk["replies"][0]["trigger"] >= jfk["last_speech"]
    assert turn["final_wait_ms_p95"] <= 600 + 40  # turn.max_wait_ms, plus the last window
