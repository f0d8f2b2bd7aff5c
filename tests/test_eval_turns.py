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


def _pause(t_end: float, pause_s: float | None, probability: float, reason="complete",
           deadline_s=0.32) -> dict:
    return {"t_speech_end": t_end, "deadline_s": deadline_s, "reason": reason,
            "probability": probability, "resumed": pause_s is not None,
            "t_resumed": None if pause_s is None else t_end + pause_s}


def test_what_if_replays_the_logged_pauses_with_a_shorter_wait():
    """A 288 ms pause inside the turn, one held as unfinished words, then the turn's end:
    a 288 ms wait on confident turns cuts in at the first pause (a pause of exactly the
    wait ends the turn, as in the VAD stage) and shortens the finished turn's wait; a floor
    above the score, or the logged wait, changes nothing; a held pause keeps its hold."""
    mod = _eval_module()
    rows = [{"last_speech": 5.0, "decisions": [
        _pause(2.24, 0.288, 0.95),
        _pause(3.0, 0.9, 0.97, reason="continues:and", deadline_s=1.2),
        _pause(5.0, None, 0.96)]}]
    cut = mod.what_if(rows, floor=0.9, wait_ms=288)
    assert cut["premature"] == 1 and cut["final_wait_ms_p50"] == 288
    for floor, wait in ((0.99, 288), (0.9, 320)):
        same = mod.what_if(rows, floor=floor, wait_ms=wait)
        assert same["premature"] == 0 and same["final_wait_ms_p50"] == 320
    ended = [{"last_speech": 5.0, "decisions": [_pause(2.0, None, 0.95), _pause(5.0, None, 0.9)]}]
    assert mod.what_if(ended, floor=0.5, wait_ms=320)["premature"] == 1  # the run cut in
