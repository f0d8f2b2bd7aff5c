from switchboard.pipeline.events import TranscriptFinal
from switchboard.pipeline.store import CallStore


def test_record_survives_a_failed_call(tmp_path):
    store = CallStore(f"sqlite:///{tmp_path}/calls.db")
    store.begin("c1", "x.wav")
    ev = TranscriptFinal(call_id="c1", leg="caller", t_audio=1.0, text="hello")
    store.finish("c1", [ev], "failed", "RuntimeError: boom")
    store.close()
    again = CallStore(f"sqlite:///{tmp_path}/calls.db")
    rec = again.call("c1")
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: boom"
    assert rec["events"] == 1
