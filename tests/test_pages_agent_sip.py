"""Leg kinds mix: a SIP caller (sipp, pressing 0 with RFC 4733) is handed to an agent
working in the browser (the agent page in Debian's headless Chromium).

The agent's fake microphone plays a LibriSpeech recording: the SIP caller's captured RTP
must hold its words; the agent page must ring with the context (JFK's first words) and
hear the caller.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from switchboard import serve
from tests.helpers import run_within
from tests.test_handoff_sip import DTMF_ZERO
from tests.test_pages_agent import agent_microphone, open_agent_page, until
from tests.test_pages_caller import need_chromium
from tests.test_serve import sipp_call, transcribe
from tests.test_sip_support import need_sipp, write_ulaw
from tests.test_webrtc import settings  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def test_a_sip_caller_is_handed_to_a_browser_agent(settings, bundle, data, tmp_path):  # noqa: F811
    need_sipp()
    need_chromium()
    if not DTMF_ZERO.is_file():
        pytest.skip("sipp's DTMF pcaps missing (scripts/setup --test)")
    from playwright.async_api import async_playwright
    from switchboard.telephony.audio_file import load

    jfk = load(str(data / "asr/whisper/jfk_16k.wav")).audio
    caller8 = np.concatenate([np.zeros(32000), jfk[::2][:40000], np.zeros(12 * 8000),
                              jfk[::2][56000:88000], np.zeros(8 * 8000)])
    ulaw = write_ulaw((caller8 * 32767).astype(np.int16), tmp_path / "caller.ulaw")
    mic = agent_microphone(data, tmp_path)
    settings.handoff.ring_s = 30.0

    async def main():
        running = await serve.start(settings, bundle)
        running.users.add("agent1", "agent", "agent1-password")
        try:
            async with async_playwright() as p:
                chromium, page = await open_agent_page(p, running.http_url, mic, "agent1",
                                                       "agent1-password")
                caller = asyncio.ensure_future(sipp_call(
                    running, "uac_dtmf.xml", ulaw, 18000,
                    {"[dtmfms]": "11500", "[pcap]": str(DTMF_ZERO)}))
                await until(page, "() => window.switchboard.state === 'ringing'", 40_000)
                ringing = await page.evaluate("() => window.switchboard")
                await page.click("#answer")
                await until(page, "() => window.switchboard.state === 'in call'", 20_000)
                rc, out, heard = await asyncio.wait_for(caller, 60)
                in_call = await page.evaluate("() => window.switchboard")
                await chromium.close()
            for _ in range(100):
                if not running.center.calls:
                    break
                await asyncio.sleep(0.1)
            running.store.flush()
            return rc, out, heard, ringing, in_call, running.store.get_call(ringing["callId"])
        finally:
            await serve.stop(running)

    rc, out, heard, ringing, in_call, record = run_within(main(), 200)
    assert rc == 0, out
    said_before = " ".join(t["text"] for t in ringing["context"]["transcript"]).lower()
    assert "fellow america" in said_before, ringing["context"]
    assert ringing["context"]["channel"] == "sip"
    said_to_caller = transcribe(bundle, heard)
    assert "connect you" in said_to_caller, said_to_caller
    assert "nightfall" in said_to_caller or "yellow lamps" in said_to_caller, said_to_caller
    assert in_call["callerPeak"] > 0.01, in_call  # the agent heard the SIP caller
    assert record["summary"]["agent"] == "agent1" and record["end_reason"] == "hangup", record
    assert {leg["role"] for leg in record["legs"]} == {"caller", "agent"}
