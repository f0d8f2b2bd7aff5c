"""The caller page in headless Chromium (Debian's, driven by Playwright) calls the bot.

Chromium's fake microphone plays a real recording; the page's transcript (what the bot
heard, from the call's own data channel) must hold the recording's words, and the page
must receive the bot's voice (its level measured in the page by a Web Audio analyser).
"""

from __future__ import annotations

import re
import shutil
import wave
from pathlib import Path

import pytest

from switchboard import serve
from tests.helpers import run_within
from tests.test_webrtc import caller_pcm, settings, settle  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"


def need_chromium():
    pytest.importorskip("playwright", reason="pip install playwright (the test extras)")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/setup --test installs it)")


def fake_microphone(data, tmp_path: Path, **kwargs) -> Path:
    """The recording, with silence around it, as the WAV Chromium plays as its mic."""
    pcm = caller_pcm(data, **kwargs)
    path = tmp_path / "mic.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm.tobytes())
    return path


async def browser(playwright, mic: Path):
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--headless=new", "--use-fake-ui-for-media-stream",
              "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-audio-capture={mic}%noloop",
              "--autoplay-policy=no-user-gesture-required"])


def test_the_caller_page_calls_the_bot_from_chromium(settings, bundle, data, tmp_path):  # noqa: F811
    need_chromium()
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright

    mic = fake_microphone(data, tmp_path, lead_s=3.0, speech_s=11.0, tail_s=6.0)

    async def main():
        running = await serve.start(settings, bundle)
        try:
            async with async_playwright() as p:
                chromium = await browser(p, mic)
                page = await chromium.new_page()
                logs: list[str] = []
                page.on("console", lambda m: logs.append(m.text))
                # The page the banner sends a new user to is the one that calls the bot.
                url = re.search(r"browser:\s+(\S+)", serve.banner(running)).group(1)
                assert url == f"{running.http_url}/call"
                await page.goto(url)
                await page.click("#call")
                try:
                    await page.wait_for_function(
                        "() => window.switchboard.transcript.some("
                        "t => t.who === 'you' && /your country/i.test(t.text))",
                        timeout=45_000, polling=200)
                except PlaywrightTimeout:
                    pass  # the assertions below say what the page got
                sb = await page.evaluate("() => window.switchboard")
                shown = await page.inner_text("#transcript")
                await page.click("#hangup")
                await chromium.close()
            await settle(running)
            running.store.flush()
            return sb, shown, logs, running.store.list_calls(limit=5)
        finally:
            await serve.stop(running)

    sb, shown, logs, calls = run_within(main(), 150)
    assert sb["error"] is None, (sb, logs)
    assert "fellow american" in shown.lower() and "your country" in shown.lower(), shown
    assert sb["micPeak"] > 0.01, sb  # the fake microphone played the recording
    assert sb["botPeak"] > 0.02, sb  # the bot's greeting reached the page
    assert len(calls) == 1 and calls[0]["channel"] == "webrtc", calls
    assert calls[0]["call_id"] == sb["callId"] and calls[0]["end_reason"] == "hangup"
