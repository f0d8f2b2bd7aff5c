"""``switchboard serve`` end to end: sipp calls the server over real SIP and RTP.

The bot greets and answers (its words transcribed from the RTP sipp received), the call's
record is stored, shutdown hangs up live calls with a BYE, and admission control refuses
the call over the limit with 503 + Retry-After while the running call goes on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from switchboard.telephony import g711

from switchboard import serve
from tests.test_sip_support import free_port, listen_udp, need_sipp, run_sipp, write_ulaw

pytestmark = pytest.mark.slow


@pytest.fixture()
def settings(server_settings):
    return server_settings


def caller_audio(data, tmp_path: Path, lead_s: float = 4.0, speech_s: float = 5.0) -> Path:
    """Silence while the bot greets, then a real speaker, as raw 8 kHz μ-law for sipp."""
    from switchboard.telephony.audio_file import load

    speech = load(str(data / "asr/whisper/jfk_16k.wav")).audio[::2][: int(speech_s * 8000)]
    pcm = np.concatenate([np.zeros(int(lead_s * 8000), np.float32), speech])
    return write_ulaw((pcm * 32767).astype(np.int16), tmp_path / "caller.ulaw")


def transcribe(bundle, pcm8: np.ndarray) -> str:
    audio16 = np.repeat(pcm8.astype(np.float32) / 32768.0, 2)
    asr = bundle.asr()
    texts = [asr.decode(audio16[i:i + 16000 * 25]).text
             for i in range(0, len(audio16), 16000 * 25)]
    return " ".join(texts).lower()


async def sipp_call(running, scenario: str, ulaw: Path, play_ms: int,
                    literal: dict[str, str] | None = None):
    """One sipp call to the server; (exit code, output, the 8 kHz audio sipp received)."""
    port = free_port()
    rtp_t, rtp = await listen_udp(port)
    rtcp_t, _ = await listen_udp(port + 1)
    try:
        rc, out = await run_sipp(scenario, running.sip.endpoint.port,
                                 keys={"rtpport": str(port)},
                                 literal={"[audio]": str(ulaw), "[playms]": str(play_ms)}
                                 | (literal or {}))
    finally:
        rtp_t.close()
        rtcp_t.close()
    heard = g711.ulaw_decode(b"".join(p[4] for p in rtp.packets if p[0] == 0))
    return rc, out, heard


def test_a_sip_caller_hears_the_bot_and_the_call_is_recorded(settings, bundle, data, tmp_path):
    need_sipp()
    ulaw = caller_audio(data, tmp_path)

    async def main():
        running = await serve.start(settings, bundle)
        try:
            result = await sipp_call(running, "uac_audio.xml", ulaw, 13000)
            await asyncio.sleep(0.5)
            running.store.flush()
            return result, running.store.list_calls(limit=5)
        finally:
            await serve.stop(running)

    (rc, out, heard), calls = asyncio.run(main())
    assert rc == 0, out
    said = transcribe(bundle, heard)
    assert "thanks for calling" in said and "help you" in said, said
    # JFK asks for nothing the bot knows: it says so (and is cut when he talks on).
    assert "sorry" in said, said
    assert len(calls) == 1 and calls[0]["status"] == "completed"
    assert calls[0]["end_reason"] == "hangup" and calls[0]["channel"] == "sip"

    from switchboard.pipeline.store import CallStore

    store = CallStore(settings.store.url)
    record = store.get_call(calls[0]["call_id"])
    text = " ".join(t["text"] for t in store.transcript(calls[0]["call_id"])).lower()
    (left,) = store.events(calls[0]["call_id"], kinds=["leg_left"])
    store.close()
    # How the line did is in the record: sipp's 9 s of RTP (450 packets), played out.
    media = left["media"]
    assert media["rtp"]["received"] >= 400 and media["jitter_buffer"]["played"] >= 400, media
    assert media["jitter_buffer"]["lost"] == 0 and 1 <= media["jitter_buffer"]["depth"] <= 8
    assert "fellow america" in text, text
    kinds = {e["kind"] for e in record["events"]} if "events" in record else set()
    assert {leg["role"] for leg in record["legs"]} == {"caller"}
    assert not kinds or "bot_reply" in kinds


def test_shutdown_hangs_up_live_calls_and_keeps_their_record(settings, bundle, data, tmp_path):
    need_sipp()
    ulaw = caller_audio(data, tmp_path, lead_s=1.0, speech_s=2.0)

    async def main():
        running = await serve.start(settings, bundle)
        stopped = False
        try:
            call = asyncio.ensure_future(sipp_call(running, "uac_wait_bye.xml", ulaw, 0))
            for _ in range(100):
                if running.center.calls:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(4.0)
            await serve.stop(running)
            stopped = True
            return await asyncio.wait_for(call, 30)
        finally:
            if not stopped:
                await serve.stop(running)

    rc, out, _heard = asyncio.run(main())
    assert rc == 0, out  # sipp received our BYE and answered it

    from switchboard.pipeline.store import CallStore

    store = CallStore(settings.store.url)
    calls = store.list_calls(limit=5)
    store.close()
    assert len(calls) == 1 and calls[0]["end_reason"] == "shutdown", calls


def test_the_call_over_the_limit_gets_503_and_the_running_call_goes_on(
        settings, bundle, data, tmp_path):
    need_sipp()
    settings.server.max_calls = 1
    settings.server.retry_after_s = 17
    ulaw = caller_audio(data, tmp_path, lead_s=4.0, speech_s=5.0)

    async def main():
        running = await serve.start(settings, bundle)
        try:
            first = asyncio.ensure_future(sipp_call(running, "uac_audio.xml", ulaw, 12000))
            for _ in range(100):
                if running.center.calls:
                    break
                await asyncio.sleep(0.1)
            second = await run_sipp(
                "uac_reject.xml", running.sip.endpoint.port,
                keys={"fmt": "0", "codec": "PCMU/8000", "retry": "Retry-After: 17"},
                literal={"[expect]": "503"})
            return await asyncio.wait_for(first, 60), second, running.center.refused
        finally:
            await serve.stop(running)

    (rc, out, heard), (rc2, out2), refused = asyncio.run(main())
    assert rc2 == 0, out2
    assert refused == 1
    assert rc == 0, out
    said = transcribe(bundle, heard)
    assert "thanks for calling" in said, said
