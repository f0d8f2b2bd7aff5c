"""Leg kinds mix: a WebRTC caller (an aiortc peer, pressing 0 on the page's keypad) is
handed to an agent's SIP phone (baresip, registered with digest authentication).

The phone plays a LibriSpeech recording and records what it hears: the WebRTC caller must
hear the agent's words, the phone the caller's.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soundfile as sf

from switchboard import serve
from tests.helpers import run_within
from tests.test_handoff_sip import _transcribe_file, registered_agent
from tests.test_sip_support import BARESIP
from tests.test_webrtc import caller_pcm, settings, transcribe16  # noqa: F401 - the fixture
from tests.webrtc_client import call_bot

pytestmark = pytest.mark.slow


def test_a_webrtc_caller_is_handed_to_a_sip_agent_phone(settings, bundle, data, tmp_path):  # noqa: F811
    if BARESIP is None:
        pytest.skip("baresip missing (scripts/setup --test)")
    from switchboard.telephony.audio_file import load

    libri = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio
    voice = tmp_path / "agent.wav"
    # baresip hangs up when its source file ends: the agent's words, then a long silence.
    sf.write(voice, np.concatenate([np.zeros(8000), libri[::2][:6 * 8000],
                                    np.zeros(40 * 8000)]), 8000, subtype="PCM_16")
    first = caller_pcm(data, lead_s=4.0, speech_s=11.0, tail_s=10.0)
    pcm = np.concatenate([first, caller_pcm(data, lead_s=0.0, speech_s=11.0, tail_s=2.0)])
    settings.handoff.ring_s = 10.0

    async def main():
        running = await serve.start(settings, bundle)
        try:
            async with registered_agent(running, tmp_path, voice, run_s=80):
                result = await call_bot(running.http_url, pcm, listen_s=2.0,
                                        key_after_final="0")
                for _ in range(100):
                    if not running.center.calls:
                        break
                    await asyncio.sleep(0.1)
                running.store.flush()
                return result, running.store.get_call(result.call_id)
        finally:
            await serve.stop(running)

    result, record = run_within(main(), 200)
    handoff = record["handoffs"][0]
    assert handoff["reason"] == "dtmf" and handoff["agent"] == "agent1", handoff
    assert handoff["outcome"] == "answered", handoff
    assert "fellow america" in str(handoff["context"]).lower(), handoff["context"]
    said_to_caller = transcribe16(bundle, bytes(result.heard))
    assert "connect you" in said_to_caller, said_to_caller
    assert "nightfall" in said_to_caller or "yellow lamps" in said_to_caller, said_to_caller
    recordings = sorted((tmp_path / "phone" / "heard").glob("*-dec.wav"))
    assert recordings, list((tmp_path / "phone").iterdir())
    heard_by_agent = " ".join(_transcribe_file(bundle, p) for p in recordings)
    assert "your country" in heard_by_agent, heard_by_agent
