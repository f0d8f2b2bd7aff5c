"""Bad input on the WebRTC side, while a good WebRTC call goes on.

A broken SDP offer, an offer with no audio, one with no codec we speak, a body that is not
JSON: each gets 400 with the reason and makes no call. An offer whose ICE never connects
is recorded as a failed call (``ice_failed``). A caller whose process is killed mid-call
(no BYE, no DTLS close) ends its call once its media stops, and the record is kept. The
good call beside them hears the bot and reads only its own transcript; nobody without the
API token reads any call's events.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from switchboard import serve
from tests.helpers import run_within
from tests.test_webrtc import caller_pcm, settings, transcribe16  # noqa: F401 - the fixture
from tests.webrtc_client import ROOT_HINT, call_bot

pytestmark = pytest.mark.slow


async def real_offer(audio: bool = True) -> str:
    """An offer as an aiortc peer makes it (audio and a data channel, or only a channel)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("events")
    if audio:
        pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def post(url: str, body) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        kwargs = {"data": body} if isinstance(body, str) else {"json": body}
        async with http.post(f"{url}/webrtc/offer", **kwargs) as r:
            return r.status, await r.json()


async def killed_caller(url: str, seconds: float) -> str:
    """A caller process, killed (SIGKILL) ``seconds`` after its call was answered."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.webrtc_client", url, "60", cwd=ROOT_HINT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        await asyncio.sleep(seconds)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
    return line.decode().strip()


def test_bad_offers_are_refused_and_vanished_peers_end_their_calls(settings, bundle, data):  # noqa: F811
    pcm = caller_pcm(data, lead_s=4.0, speech_s=5.0, tail_s=1.0)

    async def main():
        running = await serve.start(settings, bundle)
        running.webrtc.ice_timeout_s = 3.0
        running.webrtc.media_timeout_s = 3.0
        url = running.http_url
        try:
            good = asyncio.ensure_future(call_bot(url, pcm, listen_s=2.0))
            offer = await real_offer()
            no_audio = await real_offer(audio=False)
            no_codec = re.sub(r"a=rtpmap:(\d+) (opus|PCMU|PCMA)/", r"a=rtpmap:\1 G729X/",
                              offer, flags=re.I)
            unreachable = re.sub(r"a=candidate:.*\r\n", "", offer)
            refused = await asyncio.gather(
                post(url, {"sdp": "v=0\r\nthis is not sdp\r\n", "type": "offer"}),
                post(url, {"sdp": offer[: len(offer) // 3], "type": "offer"}),
                post(url, {"sdp": no_audio, "type": "offer"}),
                post(url, {"sdp": no_codec, "type": "offer"}),
                post(url, {"sdp": offer, "type": "answer"}),
                post(url, "{not json"),
                post(url, ["sdp"]),
            )
            ice = await post(url, {"sdp": unreachable, "type": "offer"})
            vanished = await killed_caller(url, 3.0)
            # Nobody without the token reads a call's events, not even a caller.
            call_ids = [c["call_id"] for c in running.center.live()]
            async with aiohttp.ClientSession() as http:
                statuses = []
                for call_id in call_ids:
                    for path in (f"/api/calls/{call_id}/events", f"/api/calls/{call_id}"):
                        async with http.get(url + path) as r:
                            statuses.append(r.status)
            result = await asyncio.wait_for(good, 60)
            for _ in range(150):
                if not running.center.calls:
                    break
                await asyncio.sleep(0.1)
            live_after = len(running.center.calls)
            running.store.flush()
            calls = {c["call_id"]: c for c in running.store.list_calls(limit=50)}
            return refused, ice, vanished, statuses, result, calls, live_after
        finally:
            await serve.stop(running)

    refused, ice, vanished, statuses, result, calls, live_after = run_within(main(), 150)
    reasons = [body.get("error", "") for _status, body in refused]
    assert [s for s, _ in refused] == [400] * 7, refused
    assert "broken SDP" in reasons[0] or "no audio" in reasons[0], reasons
    assert "no audio" in reasons[2] and "codec" in reasons[3], reasons
    assert "expected an SDP offer" in reasons[4] and "not JSON" in reasons[5], reasons
    # ICE that never connects: a failed call on record.
    assert ice[0] == 200
    record = calls[ice[1]["call_id"]]
    assert record["status"] == "failed" and record["end_reason"] == "ice_failed", record
    # The killed caller's call ended once its media stopped; its record is kept.
    assert calls[vanished]["end_reason"] == "hangup", calls[vanished]
    assert calls[vanished]["channel"] == "webrtc"
    assert statuses and set(statuses) == {401}, statuses
    # The good call went on: it heard the bot and read only its own transcript.
    said = transcribe16(bundle, bytes(result.heard))
    assert "thanks for calling" in said, said
    heard = " ".join(e.get("text", "") for e in result.events).lower()
    assert "fellow america" in heard and {e.get("call_id") for e in result.events
                                         if e["kind"] == "call"} == {result.call_id}
    assert calls[result.call_id]["end_reason"] == "hangup"
    assert live_after == 0
    # Refused offers made no call: the good, the ICE-failed and the killed call only.
    assert len(calls) == 3, calls
