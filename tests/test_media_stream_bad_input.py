"""Bad input on the media-stream WebSocket, while a good carrier call goes on.

Each broken stream gets a clear close (code and reason) or a clean end of its call with
the record kept; damaged messages inside a good stream are dropped and recorded; a peer
that vanishes mid-call ends its call; and the good call beside them hears the bot.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from switchboard import serve
from tests.helpers import run_within
from tests.test_media_stream import (
    STREAM_SID,
    caller_ulaw,
    media,
    messages,
    settings,  # noqa: F401 - the fixture
    stream_call,
    transcribe8,
)

pytestmark = pytest.mark.slow

SILENT = b"\xff" * 160  # 20 ms of μ-law silence


async def closed_with(ws: aiohttp.ClientWebSocketResponse, seconds: float = 15.0
                      ) -> tuple[int | None, str]:
    """Wait (bounded) for the server to close; its close code and reason."""
    async def until_closed() -> str:
        for _ in range(100_000):  # the server's media and marks; only the close matters
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.CLOSE:
                return str(msg.extra or "")
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return ""
        return ""

    reason = await asyncio.wait_for(until_closed(), seconds)
    return ws.close_code, reason


async def one(url: str, call_sid: str, before_start: list | None = None,
              after_start: list | None = None, media_s: float = 1.0,
              start: dict | None = None) -> tuple[int | None, str]:
    """A stream that sends ``before_start``, start, ``media_s`` of silence, then
    ``after_start``; (close code, reason) once the server closes it."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        connected, good_start = messages(call_sid=call_sid)
        await ws.send_str(json.dumps(connected))
        for item in before_start or []:
            await (ws.send_bytes(item) if isinstance(item, bytes) else ws.send_str(item))
        if before_start is None:
            await ws.send_str(json.dumps(start or good_start))
            for i in range(int(media_s * 50)):
                await ws.send_str(json.dumps(media(i + 2, i + 1, SILENT)))
                await asyncio.sleep(0.02)
            for item in after_start or []:
                await (ws.send_bytes(item) if isinstance(item, bytes) else ws.send_str(item))
        return await closed_with(ws)


async def damaged(url: str, call_sid: str) -> tuple[int | None, str]:
    """A good stream with damaged messages in it: it must go on until its stop."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        connected, start = messages(call_sid=call_sid)
        await ws.send_str(json.dumps(connected))
        await ws.send_str(json.dumps(start))
        bad = [
            {"event": "banana", "streamSid": STREAM_SID},
            {"event": "media", "sequenceNumber": "500", "streamSid": STREAM_SID,
             "media": {"track": "inbound", "payload": "//////8"}},  # truncated base64
            {"event": "media", "sequenceNumber": "3", "streamSid": STREAM_SID,
             "media": {"track": "inbound", "payload": "AAAA"}},  # behind 500: out of order
            {"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"digit": "XY"}},
            {"event": "mark", "streamSid": STREAM_SID, "mark": {"name": "never-sent"}},
        ]
        for i in range(150):
            await ws.send_str(json.dumps(media(i + 2, i + 1, SILENT)))
            if i == 50:
                for message in bad:
                    await ws.send_str(json.dumps(message))
            await asyncio.sleep(0.02)
        await ws.send_str(json.dumps({"event": "stop", "streamSid": STREAM_SID,
                                      "sequenceNumber": "9999", "stop": {}}))
        return await closed_with(ws)


async def vanish(url: str, call_sid: str) -> None:
    """A carrier that drops the TCP connection mid-call, without stop or close."""
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url)
        connected, start = messages(call_sid=call_sid)
        await ws.send_str(json.dumps(connected))
        await ws.send_str(json.dumps(start))
        for i in range(100):
            await ws.send_str(json.dumps(media(i + 2, i + 1, SILENT)))
            await asyncio.sleep(0.02)
        ws._response.connection.transport.abort()  # no close frame: the peer is gone


def test_bad_streams_end_cleanly_with_their_records_and_a_good_call_goes_on(
        settings, bundle, data):  # noqa: F811 - the fixture
    ulaw = caller_ulaw(data, lead_s=4.0, speech_s=3.0, tail_s=1.0)
    bad_format = messages(call_sid="CAformat")[1]
    bad_format["start"]["mediaFormat"] = {"encoding": "audio/l16", "sampleRate": 16000,
                                          "channels": 1}

    async def main():
        running = await serve.start(settings, bundle)
        running.media_streams.start_timeout_s = 2.0
        url = running.media_stream_url
        try:
            good = asyncio.ensure_future(stream_call(url, ulaw, listen_s=2.0))
            await asyncio.sleep(0.5)
            results = await asyncio.gather(
                one(url, "CAnotjson", after_start=["{not json"]),
                one(url, "CAnoevent", after_start=[json.dumps({"media": {}})]),
                one(url, "CAbinary", after_start=[b"\x00\x01binary"]),
                one(url, "CArestart", after_start=[json.dumps(messages()[1])]),
                one(url, "CAmediafirst", before_start=[json.dumps(media(1, 1, SILENT))]),
                one(url, "CAnostart", before_start=[]),
                one(url, "CAformat", start=bad_format),
                damaged(url, "CAdamaged"),
                vanish(url, "CAvanish"),
            )
            carrier = await asyncio.wait_for(good, 60)
            for _ in range(100):
                if not running.center.calls:
                    break
                await asyncio.sleep(0.1)
            live_after = len(running.center.calls)
            running.store.flush()
            calls = {c["caller"]: c for c in running.store.list_calls(limit=50)}
            errors = {}
            for caller, record in calls.items():
                errors[caller] = [e["error"] for e in running.store.events(
                    record["call_id"], kinds=["stage_error"])]
            return results, carrier, calls, errors, live_after
        finally:
            await serve.stop(running)

    results, carrier, calls, errors, live_after = run_within(main(), 150)
    (notjson, noevent, binary, restart, mediafirst, nostart, fmt, damaged_end, _) = results
    # Protocol violations mid-call: 1008/1003 with the reason; the call ends, kept.
    assert notjson[0] == 1008, notjson
    assert noevent[0] == 1008, noevent
    assert binary[0] == 1003, binary
    assert restart[0] == 1008, restart
    for sid, words in (("CAnotjson", "not JSON"), ("CAnoevent", "without an event"),
                       ("CAbinary", "binary"), ("CArestart", "start after start")):
        record = calls[f"twilio:{sid}"]
        assert record["end_reason"] == "protocol_error", record
        assert words in record["error"], record
    # Before start: refused with a reason, no call made.
    assert mediafirst[0] == 1008 and "media before start" in mediafirst[1], mediafirst
    assert nostart[0] == 1008 and "no start" in nostart[1], nostart
    assert fmt[0] == 1008 and "unsupported media format" in fmt[1], fmt
    assert not {"twilio:CAmediafirst", "twilio:CAnostart", "twilio:CAformat"} & set(calls)
    # Damaged messages are dropped and recorded; the call ends at its stop.
    assert damaged_end[0] == 1000, damaged_end
    record = calls["twilio:CAdamaged"]
    assert record["end_reason"] == "hangup" and record["status"] == "completed", record
    kinds = {e.split(":")[0] for e in errors["twilio:CAdamaged"]}
    assert {"unknown_event", "bad_payload", "out_of_order", "bad_dtmf",
            "unknown_mark"} <= kinds, errors["twilio:CAdamaged"]
    # The vanished carrier's call ended and was recorded.
    assert calls["twilio:CAvanish"]["end_reason"] == "hangup", calls["twilio:CAvanish"]
    assert calls["twilio:CAvanish"]["status"] == "completed"
    # The good call beside them heard the bot; nothing is left live.
    said = transcribe8(bundle, bytes(carrier.played))
    assert "thanks for calling" in said, said
    assert live_after == 0
