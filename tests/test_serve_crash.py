"""A server killed mid-call (SIGKILL: no chance to clean up) keeps the call's record, and the
next start marks it interrupted: ``switchboard serve`` run as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from switchboard.pipeline.store import CallStore

from tests.test_serve import caller_audio
from tests.test_sip_support import free_port, listen_udp, need_sipp, run_sipp

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


async def start_server(config: Path, sip_port: int, http_port: int):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "--config", str(config), "serve",
        "--sip-port", str(sip_port), "--http-port", str(http_port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    lines = []
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise AssertionError("server exited:\n" + "".join(lines))
        lines.append(line.decode())
        if line.startswith(b"Ctrl-C"):
            return proc


def _transcribed(db: Path) -> bool:
    if not db.exists():
        return False
    store = CallStore(f"sqlite:///{db}")
    try:
        calls = store.list_calls(limit=1)
        return bool(calls) and any(t["speaker"] == "caller"
                                   for t in store.transcript(calls[0]["call_id"]))
    finally:
        store.close()


def test_sigkill_mid_call_leaves_a_record_marked_interrupted_at_restart(data, tmp_path):
    need_sipp()
    db = tmp_path / "calls.db"
    config = tmp_path / "switchboard.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n'
                      f'[nlu]\nkb_dir = "{data / "kb" / "abcd"}"\n')
    ulaw = caller_audio(data, tmp_path, lead_s=3.5, speech_s=5.0)

    async def main():
        sip_port, http_port = free_port(), free_port()
        server = await start_server(config, sip_port, http_port)
        rtp_port = free_port()
        rtp_t, _ = await listen_udp(rtp_port)
        call = asyncio.ensure_future(run_sipp(
            "uac_audio.xml", sip_port, keys={"rtpport": str(rtp_port)},
            literal={"[audio]": str(ulaw), "[playms]": "20000"}, timeout_s=25))
        # Kill once the caller's first words are on record (the machine may be slow).
        for _ in range(300):
            await asyncio.sleep(0.1)
            if await asyncio.to_thread(_transcribed, db):
                break
        await asyncio.sleep(0.5)
        os.kill(server.pid, signal.SIGKILL)
        await server.wait()
        rtp_t.close()
        await asyncio.wait_for(call, 40)  # sipp gives up on its BYE: nobody answers

        during = CallStore(f"sqlite:///{db}")
        before = during.list_calls(limit=5)
        during.close()
        server = await start_server(config, free_port(), free_port())
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)
        return before, server.returncode

    before, rc = asyncio.run(main())
    assert rc == 0
    assert [c["status"] for c in before] == ["live"]  # the kill left it live...
    store = CallStore(f"sqlite:///{db}")
    calls = store.list_calls(limit=5)
    record = store.get_call(calls[0]["call_id"])
    text = " ".join(t["text"] for t in store.transcript(calls[0]["call_id"])
                    if t["speaker"] == "caller").lower()
    kinds = [e["kind"] for e in store.events(calls[0]["call_id"]) if e["kind"] != "stage_latency"]
    store.close()
    assert [c["status"] for c in calls] == ["interrupted"]  # ...the restart marked it
    assert record["ended_at"] is not None
    assert "fellow america" in text, kinds  # what was said before the kill is kept
    assert np.isfinite(record["duration_s"]) and record["duration_s"] > 3
