"""Smoke test of scripts/bench_sip: one clip over real SIP, one barge-in call; the JSON has
its fields. No timing is asserted: benchmarks report, they never fail on a machine's speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_bench_sip_writes_its_fields(data, tmp_path):
    for tool in ("sipp", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (scripts/setup --test)")
    if os.geteuid() != 0:
        pytest.skip("the loopback capture needs root (or CAP_NET_RAW for tcpdump)")
    out = tmp_path / "bench_sip.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_sip.py"), "--parts", "v2v,barge",
         "--clips", "1", "--barge", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env=os.environ | {"SWITCHBOARD_DATA": str(data)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"date", "cpu", "cores", "loadavg_at_start"} <= set(result["machine"])
    assert len(result["clips"]) == 1 and {"speech_s", "silero_end_s"} <= set(result["clips"][0])
    v2v = result["v2v"]
    assert {"n", "p50", "p95", "budget"} <= set(v2v["wire"]) and v2v["wire"]["budget"] == 600
    assert {"n", "p50", "p95"} <= set(v2v["server"])
    (turn,) = v2v["turns"]
    assert turn["sipp_rc"] == 0
    assert turn["status"] in {"ok", "overlap", "no_reply", "lost"}
    if turn["status"] == "ok":
        assert {"v2v_ms", "server_v2v_ms", "ingress_ms", "egress_ms"} <= set(turn)
    barge = result["barge_in"]
    assert {"n", "p50", "p95", "budget"} <= set(barge["wire"]) and barge["wire"]["budget"] == 300
    (call,) = barge["calls"]
    assert call["status"] in {"ok", "bot_silent_at_onset", "cut_in_pause", "lost"}
    assert isinstance(call["server_stop_ms"], list)
