"""A WebRTC caller (an aiortc peer, as the caller page is) calls ``switchboard serve``.

Its microphone is a real recording sent as Opus at 48 kHz; what the bot heard comes back
on the call's ``events`` data channel, the bot's reply comes back as audio (transcribed
here), and the call is recorded with channel ``webrtc``.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from switchboard import serve
from tests.helpers import run_within
from tests.test_media_stream import spoke
from tests.webrtc_client import call_bot

pytestmark = pytest.mark.slow


@pytest.fixture()
def settings(server_settings):
    return server_settings


def caller_pcm(data, lead_s: float = 4.0, speech_s: float = 11.0, tail_s: float = 2.0
               ) -> np.ndarray:
    """Silence while the bot greets, then JFK, as 16 kHz int16."""
    from switchboard.telephony.audio_file import load

    speech = load(str(data / "asr/whisper/jfk_16k.wav")).audio[: int(speech_s * 16000)]
    pcm = np.concatenate([np.zeros(int(lead_s * 16000), np.float32), speech,
                          np.zeros(int(tail_s * 16000), np.float32)])
    return (np.clip(pcm, -1, 1) * 32767).astype(np.int16)


def transcribe16(bundle, pcm: bytes) -> str:
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    asr = bundle.asr()
    return " ".join(asr.decode(audio[i:i + 16000 * 25]).text
                    for i in range(0, len(audio), 16000 * 25)).lower()


async def settle(running, seconds: float = 10.0) -> None:
    for _ in range(int(seconds * 10)):
        if not running.center.calls:
            return
        await asyncio.sleep(0.1)


def test_an_aiortc_caller_hears_the_bot_and_reads_its_own_transcript(settings, bundle, data):
    pcm = caller_pcm(data)

    async def main():
        running = await serve.start(settings, bundle)
        try:
            result = await call_bot(running.http_url, pcm, listen_s=8.0)
            await settle(running)
            running.store.flush()
            calls = running.store.list_calls(limit=5)
            left = running.store.events(calls[0]["call_id"], kinds=["leg_left"]) if calls else []
            return result, calls, left
        finally:
            await serve.stop(running)

    result, calls, left = run_within(main(), 120)
    assert result.status == 200, result.error
    said = transcribe16(bundle, bytes(result.heard))
    assert "thanks for calling" in said and "help you" in said, said
    replies = [e["text"] for e in result.events if e["kind"] == "bot_reply"][1:]
    assert replies and spoke(said, replies[0]), (replies, said)  # its reply, heard
    heard = " ".join(e["text"] for e in result.events if e["kind"] == "transcript_final")
    assert "fellow america" in heard.lower(), result.events
    assert {e["kind"] for e in result.events} <= {
        "call", "call_state", "transcript_partial", "transcript_final", "bot_reply", "ended"}
    assert len(calls) == 1 and calls[0]["channel"] == "webrtc", calls
    assert calls[0]["call_id"] == result.call_id and calls[0]["end_reason"] == "hangup"
    # The record says how the line went: ~17 s of 20 ms frames each way, none lost here.
    (media,) = [e["media"] for e in left]
    assert media["frames_in"] >= 700 and media["rtp"]["received"] >= 700, media
    assert media["rtp"]["sent"] >= 700 and media["rtp"]["lost"] == 0, media
    assert 0 <= media["rtp"]["interarrival_jitter_ms"] < 100, media
