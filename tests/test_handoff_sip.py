"""A handoff over real SIP: a sipp caller presses 0 (RFC 4733), baresip — registered as an
agent with digest authentication — is rung, answers, and the two are bridged.

The agent's phone plays a real recording into the call and records what it hears; the
caller's RTP is captured. Each side must hear the other's words (transcribed), the agent
gets the call's context, and the record keeps the handoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from switchboard.pipeline.dialogue import APOLOGIES

from switchboard import serve
from tests.test_serve import sipp_call, transcribe
from tests.test_sip_support import BARESIP, free_port, need_sipp, write_ulaw

pytestmark = pytest.mark.slow

DTMF_ZERO = Path("/usr/share/sip-tester/dtmf_2833_0.pcap")


def baresip_config(tmp: Path, voice: Path, account: str) -> Path:
    """A baresip configuration under ``tmp``: plays ``voice`` as its microphone, records
    what it hears (sndfile module: ``tmp/heard/*-dec.wav``) and uses ``account``."""
    (tmp / "heard").mkdir(parents=True)
    rtp = free_port()
    (tmp / "config").write_text("\n".join([
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{free_port()}",
        "sip_transports udp",
        "net_interface 127.0.0.1",
        "module_path /usr/lib/baresip/modules",
        "module g711.so",
        "module aufile.so",
        "module aubridge.so",
        "module sndfile.so",
        "module_app account.so",
        "module_app menu.so",
        f"audio_source aufile,{voice}",
        "audio_player aubridge,nowhere",
        "audio_alert aubridge,alert",
        f"snd_path {tmp / 'heard'}",
        f"rtp_ports {rtp + 100}-{rtp + 199}",
        "",
    ]))
    (tmp / "accounts").write_text(account + "\n")
    return tmp


def agent_phone(tmp: Path, sip_port: int, password: str, voice: Path) -> Path:
    """agent1's phone: registers with the server and answers at once."""
    return baresip_config(tmp, voice, f"<sip:agent1@127.0.0.1:{sip_port}>;auth_pass={password};"
                                      "answermode=auto;regint=60")


@contextlib.asynccontextmanager
async def registered_agent(running, tmp: Path, voice: Path, name: str = "agent1",
                           password: str = "s3cret", run_s: int = 60) -> AsyncIterator[None]:
    """A baresip agent phone, created as user ``name`` and registered with ``running``
    (waited for, bounded), playing ``voice``; stopped on exit (or after ``run_s``)."""
    running.users.add(name, "agent", password)
    conf = agent_phone(tmp / "phone", running.sip.endpoint.port, password, voice)
    log = open(conf / "log", "w")  # noqa: SIM115 - closed below
    phone = await asyncio.create_subprocess_exec(
        BARESIP, "-f", str(conf), "-t", str(run_s), stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if running.sip.endpoint.registrar.lookup(name):
                break
            await asyncio.sleep(0.1)
        assert running.sip.endpoint.registrar.lookup(name), (conf / "log").read_text()
        yield
    finally:
        phone.terminate()
        await phone.wait()
        log.close()


async def call_and_press_zero(running, ulaw: Path, ms: int) -> tuple[tuple, str]:
    """A sipp caller playing ``ulaw`` for ``ms`` that presses 0 at 9.5 s: sipp's result
    and the call's id, once the call's record is stored."""
    result = await sipp_call(running, "uac_dtmf.xml", ulaw, ms,
                             {"[dtmfms]": "9500", "[pcap]": str(DTMF_ZERO)})
    await asyncio.sleep(1.0)
    running.store.flush()
    return result, running.store.list_calls(limit=1)[0]["call_id"]


@pytest.fixture()
def settings(server_settings):
    settings = server_settings
    settings.handoff.ring_s = 10.0
    return settings


def test_dtmf_zero_hands_a_sip_caller_to_a_registered_baresip_agent(
        settings, bundle, data, tmp_path):
    need_sipp()
    if BARESIP is None or not DTMF_ZERO.is_file():
        pytest.skip("baresip or sipp's DTMF pcaps missing (scripts/setup --test)")
    from switchboard.telephony.audio_file import load

    jfk = load(str(data / "asr/whisper/jfk_16k.wav")).audio
    libri = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio
    # The caller: silence through the greeting, JFK's first words, then (after the key and
    # the transfer) JFK's last words, which only the agent can answer.
    caller8 = np.concatenate([np.zeros(32000), jfk[::2][:40000], np.zeros(8 * 8000),
                              jfk[::2][56000:88000], np.zeros(3 * 8000)])
    ulaw = write_ulaw((caller8 * 32767).astype(np.int16), tmp_path / "caller.ulaw")
    voice = tmp_path / "agent.wav"
    # baresip hangs up when its source file ends: the agent's words, then a long silence.
    sf.write(voice, np.concatenate([np.zeros(8000), libri[::2][:6 * 8000],
                                    np.zeros(30 * 8000)]), 8000, subtype="PCM_16")

    async def main():
        running = await serve.start(settings, bundle)
        try:
            async with registered_agent(running, tmp_path, voice):
                result, call_id = await call_and_press_zero(running, ulaw, 14000)
                return result, running.store.get_call(call_id)
        finally:
            await serve.stop(running)

    (rc, out, heard_by_caller), record = asyncio.run(main())
    assert rc == 0, out
    handoff = record["handoffs"][0]
    assert handoff["reason"] == "dtmf" and handoff["agent"] == "agent1", handoff
    assert handoff["outcome"] == "answered", handoff
    assert "fellow america" in str(handoff["context"]).lower(), handoff["context"]
    assert {leg["role"] for leg in record["legs"]} == {"caller", "agent"}

    said_to_caller = transcribe(bundle, heard_by_caller)
    assert "connect you" in said_to_caller, said_to_caller
    assert "nightfall" in said_to_caller or "yellow lamps" in said_to_caller, said_to_caller

    # sndfile dumps what the phone sent (-enc) and what it heard (-dec).
    recordings = sorted((tmp_path / "phone" / "heard").glob("*-dec.wav"))
    assert recordings, list((tmp_path / "phone").iterdir())
    heard_by_agent = " ".join(_transcribe_file(bundle, p) for p in recordings)
    assert "your country" in heard_by_agent, heard_by_agent


def _transcribe_file(bundle, path: Path) -> str:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio[:, 0]
    if rate != 8000:
        from switchboard.telephony.resample import resample

        audio = resample(audio, rate, 8000)
    return transcribe(bundle, (audio * 32767).astype(np.int16))


def caller_phone(tmp: Path, voice: Path) -> Path:
    """A caller's softphone: no registration, dials with ``-e /dial``."""
    return baresip_config(tmp, voice, "<sip:caller@127.0.0.1>;regint=0")


def test_a_baresip_softphone_calls_the_bot_and_understands_its_reply(
        settings, bundle, data, tmp_path):
    """The README's softphone path: baresip dials the server; what it recorded of the call
    is transcribed and holds the bot's greeting and its reply to the caller's question."""
    if BARESIP is None:
        pytest.skip("baresip missing (scripts/setup --test)")
    from switchboard.telephony.audio_file import load

    jfk = load(str(data / "asr/whisper/jfk_16k.wav")).audio
    voice = tmp_path / "caller.wav"
    # Silence through the greeting, JFK's "And so, my fellow Americans", then silence for
    # the bot's whole reply (baresip hangs up when its source file ends).
    sf.write(voice, np.concatenate([np.zeros(4 * 8000), jfk[::2][:int(2.8 * 8000)],
                                    np.zeros(9 * 8000)]), 8000, subtype="PCM_16")

    async def main():
        running = await serve.start(settings, bundle)
        conf = caller_phone(tmp_path / "phone", voice)
        log = open(conf / "log", "w")  # noqa: SIM115 - closed below
        phone = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(conf), "-t", "40", "-e",
            f"/dial sip:switchboard@127.0.0.1:{running.sip.endpoint.port}",
            stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(400):  # the call: 17 s of audio, then baresip hangs up
                await asyncio.sleep(0.1)
                calls = await asyncio.to_thread(running.store.list_calls, "completed", 1)
                if calls:
                    break
            return calls
        finally:
            phone.terminate()
            await phone.wait()
            log.close()
            await serve.stop(running)

    calls = asyncio.run(main())
    assert calls and calls[0]["end_reason"] == "hangup", (tmp_path / "phone" / "log").read_text()
    recordings = sorted((tmp_path / "phone" / "heard").glob("*-dec.wav"))
    assert recordings, (tmp_path / "phone" / "log").read_text()
    heard = " ".join(_transcribe_file(bundle, p) for p in recordings)
    assert "thanks for calling" in heard, heard
    # The reply is one of the dialogue's apologies (they vary by call): its last two words.
    tails = [" ".join(p.lower().rstrip(".").split()[-2:]) for p in APOLOGIES]
    assert any(tail in heard for tail in tails), (tails, heard)


def test_a_handoff_rings_a_desk_phone_sipp_answers_and_echoes(settings, bundle, data,
                                                             tmp_path):
    """An agent at a fixed SIP address (no registration): sipp's UAS answers the handoff's
    INVITE and echoes what it hears, so the caller hears their own later words come back
    through the bridge."""
    need_sipp()
    if not DTMF_ZERO.is_file():
        pytest.skip("sipp's DTMF pcaps missing (scripts/setup --test)")
    from switchboard.telephony.audio_file import load

    from tests.test_sip_support import run_sipp

    jfk = load(str(data / "asr/whisper/jfk_16k.wav")).audio
    caller8 = np.concatenate([np.zeros(32000), jfk[::2][:40000], np.zeros(8 * 8000),
                              jfk[::2][56000:88000], np.zeros(3 * 8000)])
    ulaw = write_ulaw((caller8 * 32767).astype(np.int16), tmp_path / "caller.ulaw")
    desk_port = free_port()
    settings.handoff.desk_phones = {"desk1": f"sip:desk1@127.0.0.1:{desk_port}"}

    async def main():
        desk = asyncio.ensure_future(run_sipp(
            "uas", 0, mode_remote=False, extra=["-p", str(desk_port), "-rtp_echo"],
            timeout_s=60))
        running = await serve.start(settings, bundle)
        try:
            result = await sipp_call(running, "uac_dtmf.xml", ulaw, 14000,
                                     {"[dtmfms]": "9500", "[pcap]": str(DTMF_ZERO)})
            desk_rc, desk_out = await asyncio.wait_for(desk, 30)
            running.store.flush()
            call_id = running.store.list_calls(limit=1)[0]["call_id"]
            return result, (desk_rc, desk_out), running.store.get_call(call_id)
        finally:
            if not desk.done():
                desk.cancel()
            await serve.stop(running)

    (rc, out, heard), (desk_rc, desk_out), record = asyncio.run(main())
    assert rc == 0, out
    assert desk_rc == 0, desk_out  # the desk phone got our BYE when the caller left
    handoff = record["handoffs"][0]
    assert handoff["agent"] == "desk1" and handoff["outcome"] == "answered", handoff
    said = transcribe(bundle, heard)
    assert "your country" in said, said  # the caller's own words, echoed by the desk phone
