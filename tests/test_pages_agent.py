"""A browser agent takes a handed-off WebRTC call: log-in, ringing with the context,
answer, two-way audio, hang-up; and a session reads only the call its agent is on.

The caller is an aiortc peer playing JFK (then pressing 0 on the page's keypad); the agent
is the agent page in Debian's headless Chromium, its fake microphone playing a LibriSpeech
recording. The caller must hear the agent's words; the agent page must show the context
that came with the call and hear the caller.
"""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from switchboard import serve
from tests.helpers import run_within
from tests.test_pages_caller import CHROMIUM, need_chromium
from tests.test_webrtc import caller_pcm, settings, transcribe16  # noqa: F401 - the fixture
from tests.webrtc_client import call_bot

pytestmark = pytest.mark.slow


def agent_microphone(data, tmp_path):
    import wave

    from switchboard.telephony.audio_file import load

    speech = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio
    pcm = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000 * 30)])
    path = tmp_path / "agent-mic.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


async def login(http: aiohttp.ClientSession, url: str, name: str, password: str) -> int:
    async with http.post(f"{url}/login", json={"name": name, "password": password}) as r:
        return r.status


async def until(page, expression: str, timeout_ms: int) -> None:
    """Wait for ``expression`` in the page; on timeout, fail with the page's state."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await page.wait_for_function(expression, timeout=timeout_ms, polling=200)
    except PlaywrightTimeout:
        state = await page.evaluate("() => window.switchboard")
        raise AssertionError(f"{expression} not reached; the page: {state}") from None


async def open_agent_page(playwright, url: str, mic, name: str, password: str):
    """Chromium with ``mic`` as its microphone, logged in on the agent page, available."""
    chromium = await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--headless=new", "--use-fake-ui-for-media-stream",
              "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-audio-capture={mic}%noloop",
              "--autoplay-policy=no-user-gesture-required"])
    page = await chromium.new_page()
    await page.goto(f"{url}/agent")
    assert page.url.endswith("/login")  # no session: the log-in page first
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#submit")
    await page.wait_for_url(f"{url}/agent", timeout=10_000)
    await until(page, "() => window.switchboard.state === 'available'", 10_000)
    return chromium, page


async def status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url, allow_redirects=False) as r:
        return r.status


def test_a_browser_agent_takes_a_handed_off_webrtc_call(settings, bundle, data, tmp_path):  # noqa: F811
    need_chromium()
    from playwright.async_api import async_playwright

    jfk = caller_pcm(data, lead_s=4.0, speech_s=11.0, tail_s=12.0)
    pcm = np.concatenate([jfk, caller_pcm(data, lead_s=0.0, speech_s=11.0, tail_s=10.0)])
    mic = agent_microphone(data, tmp_path)
    settings.handoff.ring_s = 30.0

    async def main():
        running = await serve.start(settings, bundle)
        running.users.add("alice", "agent", "alice-password-1")
        running.users.add("bob", "agent", "bob-password-1")
        url = running.http_url
        out: dict = {}
        try:
            # Log-in: no session, no page, no desk; a wrong password is refused.
            async with aiohttp.ClientSession() as anon:
                out["anon"] = [await status(anon, f"{url}/agent"),
                               await status(anon, f"{url}/agent/ws")]
                out["wrong"] = await login(anon, url, "alice", "nope")
                out["unknown"] = await login(anon, url, "mallory", "nope")
            async with async_playwright() as p:
                chromium, page = await open_agent_page(p, url, mic, "alice",
                                                       "alice-password-1")
                # aiohttp keeps cookies of an IP address host only with unsafe=True.
                async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)
                                                 ) as bob:
                    assert await login(bob, url, "bob", "bob-password-1") == 200
                    assert await status(bob, f"{url}/agent") == 200  # logged in
                    caller = asyncio.ensure_future(
                        call_bot(url, pcm, listen_s=5.0, key_after_final="0"))
                    await until(page, "() => window.switchboard.state === 'ringing'", 40_000)
                    out["ringing"] = await page.evaluate("() => window.switchboard")
                    call_id = out["ringing"]["callId"]
                    # Bob's session reads neither alice's call nor the API.
                    out["bob"] = [await status(bob, f"{url}/api/calls/{call_id}"),
                                  await status(bob, f"{url}/api/calls/{call_id}/events"),
                                  await status(bob, f"{url}/api/calls")]
                    await page.click("#answer")
                    await until(page, "() => window.switchboard.state === 'in call'", 20_000)
                    # The agent talks (its own words come back in its transcript), then
                    # hears the caller's second JFK (from 27 s into the call).
                    await until(page, "() => window.switchboard.transcript.some("
                                "t => t.leg === 'agent' && /nightfall|lamps/i.test(t.text))",
                                40_000)
                    await until(page, "() => window.switchboard.transcript.some("
                                "t => t.leg === 'caller' && t.t > 27 "
                                "&& /your country/i.test(t.text))", 40_000)
                    out["in_call"] = await page.evaluate("() => window.switchboard")
                    await page.click("#hangup")
                    out["caller"] = await asyncio.wait_for(caller, 30)
                await chromium.close()
            for _ in range(100):
                if not running.center.calls:
                    break
                await asyncio.sleep(0.1)
            running.store.flush()
            out["record"] = running.store.get_call(call_id)
            return out
        finally:
            await serve.stop(running)

    out = run_within(main(), 200)
    assert out["anon"] == [302, 401], out["anon"]
    assert out["wrong"] == 401 and out["unknown"] == 401
    context = out["ringing"]["context"]
    said_before = " ".join(t["text"] for t in context["transcript"]).lower()
    assert "fellow american" in said_before, context  # the context came with the call
    assert out["bob"] == [401, 401, 401], out["bob"]
    assert out["in_call"]["callerPeak"] > 0.01, out["in_call"]  # the agent heard the caller
    caller = out["caller"]
    heard = transcribe16(bundle, bytes(caller.heard))
    assert "connect you" in heard, heard
    assert "nightfall" in heard or "yellow lamps" in heard, heard  # the agent's words
    record = out["record"]
    assert record["end_reason"] == "agent_hangup", record
    assert record["summary"]["agent"] == "alice", record["summary"]
    assert {leg["role"] for leg in record["legs"]} == {"caller", "agent"}


def test_an_agent_reads_only_the_records_of_calls_they_answered():
    """After the call: a supervisor reads every record; an agent the calls they answered
    (or that name them as the agent), not one they were rung for and missed."""
    from switchboard.coach_ui.agent_pages import may_read_record

    from switchboard.users import Role, User

    alice, bob = User("alice", Role.AGENT), User("bob", Role.AGENT)
    sue = User("sue", Role.SUPERVISOR)
    record = {"summary": {}, "handoffs": [{"agent": "bob", "outcome": "no_answer"},
                                           {"agent": "alice", "outcome": "answered"}]}
    assert may_read_record(alice, record) and may_read_record(sue, record)
    assert not may_read_record(bob, record)
    assert may_read_record(bob, {"summary": {"agent": "bob"}, "handoffs": []})
    assert not may_read_record(sue, None)
