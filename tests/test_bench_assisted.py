"""Smoke test of scripts/bench_assisted: one assisted call of five caller turns (three
neutral, an angry one, a request), then the markdown of its JSON. Checks that the call
was really handed to an agent and coached (both legs transcribed, a workflow opened, a
prompt decided) and that the JSON has the fields the tables read. No timing is asserted:
benchmarks report, they never fail on a machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_assisted.py"


def test_bench_assisted_writes_its_fields(data, tmp_path):
    out = tmp_path / "bench_assisted.json"
    env = os.environ | {"SWITCHBOARD_DATA": str(data)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--levels", "1", "--turns", "5", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"date", "cpu", "cores", "loadavg_at_start", "loadavg_at_end"} <= set(
        result["machine"])
    assert result["turns"] == 5 and isinstance(result["held"], int)
    (row,) = result["levels"]
    assert row["calls"] == 1
    # The call went the call center's way: handed off, bridged to the agent, ended by
    # the caller's hang-up, without an error.
    assert row["bridged"] == 1 and row["errors"] == [], row
    assert row["end_reasons"] == ["hangup"], (row["end_reasons"], row["handoff_trouble"],
                                              proc.stderr[-2000:])
    assert row["handoff_trouble"] == []
    # Both legs analysed: each party's turns were transcribed.
    assert row["finals"]["caller"] >= 1 and row["finals"]["agent"] >= 1, row["finals"]
    # Coaching on: the caller's request opened a workflow and the coach decided a prompt.
    assert row["workflows_opened"] >= 1
    assert row["prompts_by_rule"].get("next_step", {}).get("decided", 0) >= 1, row[
        "prompts_by_rule"]
    asr = row["steps"]["asr_final"]
    assert {"n", "p50", "p95", "budget", "breaches"} <= set(asr) and asr["budget"] == 250
    assert asr["n"] >= 2  # a final per leg at least
    prompt = row["prompt_latency"]
    assert {"n", "p50", "p95", "budget", "p95_budget"} <= set(prompt)
    assert set(row["prompt_statuses"]) <= {"ok", "split", "no_clip", "lost"}
    for sample in row["prompt_samples"]:
        assert sample["leg"] in {"caller", "agent"}
        if sample["status"] == "ok":
            assert sample["latency_ms"] > 0  # after the speech end it answers
    assert {"wait", "run", "busy_pct", "workers"} <= set(row["queues"]["asr"])
    assert {"n", "p50", "p95", "max"} <= set(row["loop_lag_ms"])
    assert isinstance(row["degraded"], list) and isinstance(row["holds"], bool)
    assert row["process_cpu_pct"] > 0
    assert {"signs", "asr_wait_p95_ms", "cpu_share_pct"} <= set(row["saturation"])
    assert row["holds"] == (not row["over_budget"] and not row["degraded"]
                            and prompt["n"] > 0)

    md = subprocess.run([sys.executable, str(SCRIPT), "--markdown", str(out)], cwd=ROOT,
                        capture_output=True, text=True, timeout=60, env=env)
    assert md.returncode == 0, md.stderr[-2000:]
    assert "| calls | prompt latency p50 / p95 |" in md.stdout
    assert "| asr_final |" in md.stdout and "held with every budget met" in md.stdout
