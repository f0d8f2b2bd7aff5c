"""Ctrl-C during ``switchboard simulate``: the call stops at once, is recorded as
interrupted with its events so far, and the command exits 130."""

import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf
from switchboard.pipeline.store import CallStore
from switchboard.telephony.audio_file import load

from tests.conftest import ROOT


def test_ctrl_c_stops_the_call_and_records_it(data, tmp_path):
    # 33 s of speech: played to the end it would outlast every bound below.
    jfk = load(data / "asr" / "whisper" / "jfk.flac").audio
    sf.write(tmp_path / "long.wav", np.concatenate([jfk, jfk, jfk]), 16000)
    db = tmp_path / "calls.db"
    config = tmp_path / "store.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n[nlu]\nkb_dir = "{data}/kb/abcd"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard.cli", "--config", str(config), "simulate",
         str(tmp_path / "long.wav"), "--realtime", "--call-id", "ctrlc"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120  # loading the models on a busy machine
        seen = ""
        while "FINAL" not in seen:  # the call is under way: its first transcript is out
            assert time.monotonic() < deadline and proc.poll() is None, seen
            if select.select([proc.stdout], [], [], 1.0)[0]:
                seen += proc.stdout.readline()
        interrupted_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        stopped_after = time.monotonic() - interrupted_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert stopped_after < 8.0  # promptly: the rest of the 33 s call is not played
    assert "interrupted" in err and "Traceback" not in err
    record = CallStore(f"sqlite:///{db}").call("ctrlc")
    assert record["status"] == "interrupted"
    assert record["events"] > 5 and "fellow americans" in record["summary"]["transcript"].lower()
