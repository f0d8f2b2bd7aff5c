"""A carrier's media stream (Twilio Media Streams) calls ``switchboard serve``.

A WebSocket client plays the carrier: it replays the documented message sequence
(connected, start, 20 ms base64 μ-law media paced in real time, stop) with a real
recording, plays out what the bot sends like the carrier's buffer does, echoes our marks
once the audio before them has played, and empties its buffer on ``clear``. The bot's
reply is transcribed from the media the client received.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import pytest
from switchboard.telephony import g711
from switchboard.telephony.resample import resample

from switchboard import serve
from tests.helpers import run_within

pytestmark = pytest.mark.slow

STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL_SID = "CA7b1f2b3d9d0a6f1c4b0e9e1a2c3d4e5f"


@pytest.fixture()
def settings(server_settings):
    return server_settings


def caller_ulaw(data, lead_s: float = 4.0, speech_s: float = 11.0,
                tail_s: float = 2.0) -> bytes:
    """Silence while the bot greets, then JFK (who talks on over the bot's reply), as the
    8 kHz μ-law a carrier sends."""
    from switchboard.telephony.audio_file import load

    speech = load(str(data / "asr/whisper/jfk_16k.wav")).audio[: int(speech_s * 16000)]
    pcm = np.concatenate([np.zeros(int(lead_s * 16000), np.float32), speech,
                          np.zeros(int(tail_s * 16000), np.float32)])
    pcm8 = resample(pcm, 16000, 8000)
    return g711.ulaw_encode((np.clip(pcm8, -1, 1) * 32767).astype(np.int16))


def barge_ulaw(data, lead_s: float = 4.0, reply_s: float = 9.0, barge_after_s: float = 1.6,
               tail_s: float = 3.0) -> bytes:
    """A caller who says a complete sentence (LibriSpeech) and hears the bot's whole reply,
    says it again, and talks over the second reply (JFK): the carrier's μ-law."""
    from switchboard.telephony.audio_file import load

    libri = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio
    jfk = load(str(data / "asr/whisper/jfk_16k.wav")).audio

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * 16000), np.float32)

    pcm = np.concatenate([silence(lead_s), libri, silence(reply_s), libri,
                          silence(barge_after_s), jfk, silence(tail_s)])
    pcm8 = resample(pcm, 16000, 8000)
    return g711.ulaw_encode((np.clip(pcm8, -1, 1) * 32767).astype(np.int16))


def spoke(said: str, text: str) -> bool:
    """Whether the transcription ``said`` holds most of ``text``'s words (a reply heard)."""
    words = [w.strip(".,?!'\"").lower() for w in text.split()]
    words = [w for w in words if len(w) > 3]
    return bool(words) and sum(w in said for w in words) >= 0.6 * len(words)


def messages(call_sid: str = CALL_SID, stream_sid: str = STREAM_SID) -> tuple[dict, dict]:
    """The ``connected`` and ``start`` messages as Twilio documents them."""
    connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
             "start": {"accountSid": "AC00000000000000000000000000000000",
                       "streamSid": stream_sid, "callSid": call_sid,
                       "tracks": ["inbound"], "customParameters": {},
                       "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                       "channels": 1}}}
    return connected, start


def media(seq: int, chunk: int, ulaw: bytes, stream_sid: str = STREAM_SID) -> dict:
    return {"event": "media", "sequenceNumber": str(seq), "streamSid": stream_sid,
            "media": {"track": "inbound", "chunk": str(chunk),
                      "timestamp": str(chunk * 20), "payload": base64.b64encode(ulaw).decode()}}


@dataclass
class Carrier:
    """What the carrier's side saw: our media as played, our marks and clears."""

    played: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    echoed: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    media_at: list[float] = field(default_factory=list)
    stream_sids: set[str] = field(default_factory=set)
    close_code: int | None = None
    close_reason: str = ""
    others: list[dict] = field(default_factory=list)


async def carry(ws: aiohttp.ClientWebSocketResponse, carrier: Carrier, seconds: float) -> None:
    """Read what the server sends for at most ``seconds``, playing it out like a carrier:
    media joins a buffer played in real time; a mark is echoed when the buffer has played
    up to it; ``clear`` empties the buffer and echoes the marks still pending."""
    buffer_end = time.monotonic()
    pending: list[tuple[float, str]] = []
    t0 = time.monotonic()

    async def echo_due(now: float) -> None:
        while pending and pending[0][0] <= now:
            _, name = pending.pop(0)
            carrier.echoed.append(name)
            await ws.send_str(json.dumps({"event": "mark", "streamSid": STREAM_SID,
                                          "mark": {"name": name}}))

    while time.monotonic() - t0 < seconds:
        try:
            msg = await ws.receive(timeout=0.05)
        except TimeoutError:
            await echo_due(time.monotonic())
            continue
        now = time.monotonic()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            carrier.close_code = ws.close_code
            carrier.close_reason = str(msg.extra or "")
            return
        message = json.loads(msg.data)
        carrier.stream_sids.add(message.get("streamSid"))
        if message["event"] == "media":
            ulaw = base64.b64decode(message["media"]["payload"])
            carrier.played += ulaw
            carrier.media_at.append(now)
            buffer_end = max(buffer_end, now) + len(ulaw) / 8000
        elif message["event"] == "mark":
            carrier.marks.append(message["mark"]["name"])
            pending.append((max(buffer_end, now), message["mark"]["name"]))
        elif message["event"] == "clear":
            carrier.clears.append(now)
            buffer_end = now
            for i, (_, name) in enumerate(pending):
                pending[i] = (now, name)
        else:
            carrier.others.append(message)
        await echo_due(now)


async def stream_call(url: str, ulaw: bytes, listen_s: float = 3.0,
                      after_start=None) -> Carrier:
    """A whole carrier call: connected, start, the recording as real-time media, stop."""
    carrier = Carrier()
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        connected, start = messages()
        await ws.send_str(json.dumps(connected))
        await ws.send_str(json.dumps(start))
        if after_start is not None:
            await after_start(ws)
        reader = asyncio.ensure_future(carry(ws, carrier, len(ulaw) / 8000 + listen_s + 30))
        t0 = time.monotonic()
        for i in range(len(ulaw) // 160):
            if reader.done():
                break
            await ws.send_str(json.dumps(media(i + 2, i + 1, ulaw[i * 160:(i + 1) * 160])))
            delay = t0 + (i + 1) * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.sleep(listen_s)
        if not reader.done():
            await ws.send_str(json.dumps({"event": "stop", "sequenceNumber": "999999",
                                          "streamSid": STREAM_SID,
                                          "stop": {"callSid": CALL_SID}}))
        await asyncio.wait_for(reader, 40)
    return carrier


def transcribe8(bundle, ulaw: bytes) -> str:
    audio16 = resample(g711.ulaw_decode(ulaw).astype(np.float32) / 32768.0, 8000, 16000)
    asr = bundle.asr()
    return " ".join(asr.decode(audio16[i:i + 16000 * 25]).text
                    for i in range(0, len(audio16), 16000 * 25)).lower()


def test_a_media_stream_caller_hears_the_bot_gets_marks_and_clear_on_barge_in(
        settings, bundle, data):
    ulaw = barge_ulaw(data)
    # A transport test: the bot must go on answering, not hand the caller to an agent
    # after two replies it did not understand.
    settings.escalation = dataclasses.replace(
        settings.escalation, misunderstood_in_a_row=10_000, anger_threshold=11.0,
        ask_for_person=False)

    async def main():
        running = await serve.start(settings, bundle)
        try:
            carrier = await stream_call(running.media_stream_url, ulaw)
            for _ in range(100):
                if not running.center.calls:
                    break
                await asyncio.sleep(0.1)
            running.store.flush()
            edge = running.media_streams.edges[-1]
            return carrier, edge, running.store.list_calls(limit=5)
        finally:
            await serve.stop(running)

    carrier, edge, calls = run_within(main(), 150)
    from switchboard.pipeline.store import CallStore

    store = CallStore(settings.store.url)
    events = store.events(calls[0]["call_id"], kinds=["bot_reply"])
    store.close()
    said = transcribe8(bundle, bytes(carrier.played))
    assert "thanks for calling" in said and "help you" in said, said
    replies = [e["text"] for e in events if e["kind"] == "bot_reply"][1:]  # after the greeting
    assert replies and spoke(said, replies[0]), (replies, said)  # the whole first reply
    assert carrier.stream_sids == {STREAM_SID}
    # A mark after each stretch of sound, each echoed back and accounted by the edge.
    assert carrier.marks and set(carrier.echoed) <= set(carrier.marks)
    assert set(edge.played_marks) == set(carrier.echoed) and len(edge.played_marks) >= 1
    # JFK talks over the bot's reply: the bot sends clear while it had sent audio.
    assert carrier.clears, "no clear on barge-in"
    assert any(t < carrier.clears[0] for t in carrier.media_at[30:])
    assert len(calls) == 1 and calls[0]["channel"] == "media_stream"
    assert calls[0]["end_reason"] == "hangup", calls

    from switchboard.pipeline.store import CallStore

    store = CallStore(settings.store.url)
    text = " ".join(t["text"] for t in store.transcript(calls[0]["call_id"])).lower()
    kinds = [e["kind"] for e in store.events(calls[0]["call_id"])]
    (left,) = store.events(calls[0]["call_id"], kinds=["leg_left"])
    store.close()
    assert "nightfall" in text and "fellow america" in text, text
    assert "bot_reply_interrupted" in kinds
    # How the stream went is in the record, as the edge counted it.
    media = left["media"]
    assert media["frames_in"] == edge.frames_in > 500 and media["clears"] == len(carrier.clears)
    assert media["marks_played"] == len(edge.played_marks) >= 1


def _edge():
    """The edge after its ``start`` message, without a socket (messages handed in)."""
    from switchboard.telephony.media_stream import MediaStreamEdge, StreamStart

    edge = MediaStreamEdge(ws=None)
    edge.start = StreamStart(stream_sid=STREAM_SID, call_sid=CALL_SID)
    return edge


def _media(seq: int, track: str = "inbound") -> dict:
    tone = (8000 * np.sin(2 * np.pi * 500 * np.arange(160) / 8000)).astype(np.int16)
    payload = base64.b64encode(g711.ulaw_encode(tone)).decode()
    return {"event": "media", "sequenceNumber": str(seq),
            "media": {"track": track, "payload": payload}}


def test_only_the_callers_track_is_heard_and_a_repeated_message_once():
    """A both_tracks stream echoes our own audio on the outbound track: not the caller's
    words. A media message repeated with its sequence number is played once."""

    async def main():
        edge = _edge()
        for message in (_media(1), _media(2, track="outbound"), _media(3), _media(3)):
            edge._handle(message)
        return edge.frames_in, dict(edge.dropped)

    frames, dropped = asyncio.run(main())
    assert frames == 2 and dropped == {"out_of_order": 1}


def test_barge_in_drops_our_queued_media_and_keeps_the_rest():
    async def main():
        edge = _edge()
        loud = (np.full(320, 8000, np.int16)).tobytes()
        edge.send(loud)
        edge.send(bytes(640))  # the end of a stretch of speech: a mark
        edge.send(loud)
        edge.clear()
        edge.send(bytes(640))  # after a clear nothing of ours is left to play: no mark
        out = []
        while not edge._out.empty():
            out.append(json.loads(edge._out.get_nowait())["event"])
        return out

    assert asyncio.run(main()) == ["mark", "clear"]
