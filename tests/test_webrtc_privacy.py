"""A caller gets only their own call: two WebRTC callers at once, each with its own words.

Each caller's page channel carries only its own transcript; a caller who knows the other
call's id (it is no secret: the offer's answer carries it) still cannot read that call,
its events or the list of calls without the API token, nor with another caller's
connection. The caller page is public; nothing about any call is.
"""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from switchboard import serve
from tests.helpers import run_within
from tests.test_webrtc import caller_pcm, settings  # noqa: F401 - the fixture
from tests.webrtc_client import call_bot

pytestmark = pytest.mark.slow


def libri_pcm(data) -> np.ndarray:
    from switchboard.telephony.audio_file import load

    speech = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio
    pcm = np.concatenate([np.zeros(4 * 16000, np.float32), speech,
                          np.zeros(3 * 16000, np.float32)])
    return (np.clip(pcm, -1, 1) * 32767).astype(np.int16)


def test_each_caller_reads_only_its_own_call(settings, bundle, data):  # noqa: F811
    jfk = caller_pcm(data, lead_s=4.0, speech_s=8.0, tail_s=3.0)
    libri = libri_pcm(data)

    async def main():
        running = await serve.start(settings, bundle)
        url = running.http_url
        try:
            ids: dict[str, str] = {}
            a = asyncio.ensure_future(call_bot(url, jfk, listen_s=1.0,
                                               on_answer=lambda c: ids.setdefault("a", c)))
            b = asyncio.ensure_future(call_bot(url, libri, listen_s=1.0,
                                               on_answer=lambda c: ids.setdefault("b", c)))
            for _ in range(100):
                if len(ids) == 2 and len(running.center.calls) == 2:
                    break
                await asyncio.sleep(0.1)
            # Caller A knows B's call id: nothing about it is readable without the token.
            statuses = []
            async with aiohttp.ClientSession() as http:
                for path in (f"/api/calls/{ids['b']}", f"/api/calls/{ids['b']}/events",
                             "/api/calls", f"/api/calls/{ids['a']}/events"):
                    async with http.get(url + path) as r:
                        statuses.append(r.status)
                    async with http.get(url + path,
                                        headers={"Authorization": f"Bearer {ids['a']}"}) as r:
                        statuses.append(r.status)
                try:
                    async with http.ws_connect(f"{url}/api/calls/{ids['b']}/events"):
                        statuses.append(101)
                except aiohttp.WSServerHandshakeError as exc:
                    statuses.append(exc.status)
            return await asyncio.wait_for(a, 60), await asyncio.wait_for(b, 60), statuses
        finally:
            await serve.stop(running)

    a, b, statuses = run_within(main(), 150)
    assert set(statuses) == {401}, statuses
    print("A", a.events, "\nB", b.events)
    said_a = " ".join(e.get("text", "") for e in a.events).lower()
    said_b = " ".join(e.get("text", "") for e in b.events).lower()
    assert "fellow america" in said_a and "nightfall" not in said_a, said_a
    assert ("nightfall" in said_b or "yellow lamps" in said_b), said_b
    assert "fellow america" not in said_b, said_b
    assert {e["call_id"] for e in a.events if e["kind"] == "call"} == {a.call_id}
    assert {e["call_id"] for e in b.events if e["kind"] == "call"} == {b.call_id}
