"""Event to screen: from an event's publication on a live call's bus to the coach view
drawing it, in Debian's Chromium.

    scripts/bench_coach_view [--markers 400] [--every-ms 100] [--json out/bench_coach_view.json]

Starts the whole server in-process (serve.start), opens the agent page in headless
Chromium (Playwright, /usr/bin/chromium, the page's fake microphone reading a LibriSpeech
recording), calls the bot over WebRTC with an aiortc caller (JFK, repeated) who presses 0,
and answers on the page: a real call with both legs analysed, the coach on. Then it times
two kinds of event along the real path (bus → the call's event WebSocket → the page's
render → the next animation frame):

- *markers*: ``--markers`` events published on the call's bus every ``--every-ms`` (with
  jitter), alternating a coach prompt and an agent-leg partial transcript, each with a
  unique id, so every one is matched to the moment the page drew it;
- *call events*: the call's own events (transcripts, partials, emotion, intent, coach
  prompts and cards...) whose key (kind, leg, utterance / id) is unique in the call,
  timed from the bus subscriber's clock to the page's.

The server's clock is ``time.time()`` at publication; the page's is
``performance.timeOrigin + performance.now()`` in the animation frame after the DOM
change (window.switchboard.rendered). Both read this machine's clock. Prints p50/p95/max
against the budget (budgets.toml ``event_to_screen``, 300 ms; issue 10's target p50 is
150 ms) and writes JSON. Never fails on a threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import wave
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
from _common import ROOT, machine, p50_p95, shared_data, write_json

CHROMIUM = "/usr/bin/chromium"
TARGET_P50_MS = 150.0


def _mic(data: Path, folder: Path) -> Path:
    from switchboard.telephony.audio_file import load

    speech = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio
    pcm = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000 * 8)] * 6)
    path = folder / "agent-mic.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def _caller(data: Path, seconds: float) -> np.ndarray:
    from switchboard.telephony.audio_file import load

    jfk = load(str(data / "asr/whisper/jfk_16k.wav")).audio
    gap = np.zeros(4 * 16000, np.float32)
    parts, total = [gap], 4.0
    while total < seconds:
        parts += [jfk, gap]
        total += len(jfk) / 16000 + 4.0
    return (np.clip(np.concatenate(parts), -1, 1) * 32767).astype(np.int16)


def _key(e: dict) -> str | None:
    """The page's key for an event (coach_ui/static/agent.js render())."""
    kind, leg = e["kind"], e.get("leg")
    if kind == "transcript_partial":
        return f"partial:{leg}:{e.get('utterance')}"
    if kind == "transcript_final":
        return f"final:{leg}:{e.get('utterance')}"
    if kind == "bot_reply":
        return f"bot:{e.get('reply_id')}"
    if kind == "emotion":
        return f"emotion:{leg}:{e.get('utterance')}"
    if kind == "intent":
        return f"intent:{e.get('utterance')}"
    if kind == "coach_prompt":
        return f"prompt:{e.get('prompt_id')}"
    if kind == "coach_prompt_played":
        return f"played:{e.get('prompt_id')}"
    if kind == "knowledge_card":
        return f"card:{e.get('title')}"
    return None


async def run(args) -> dict:
    from playwright.async_api import async_playwright
    from switchboard.models.bundle import ModelBundle
    from switchboard.pipeline.events import CoachPrompt, TranscriptPartial

    from switchboard import serve
    from switchboard.config import load_settings
    from tests.webrtc_client import call_bot

    data = shared_data()
    folder = Path(tempfile.mkdtemp(prefix="bench_coach_view_"))
    settings = load_settings(None)
    settings.store.url = f"sqlite:///{folder / 'calls.db'}"
    settings.nlu.kb_dir = str(data / "kb" / "abcd")
    settings.sip.port = 0
    settings.server.http_port = 0
    settings.handoff.ring_s = 30.0
    bundle = ModelBundle(settings)
    bundle.warm_up()
    marker_s = args.markers * args.every_ms / 1000.0
    caller_pcm = _caller(data, 40.0 + marker_s + 20.0)
    running = await serve.start(settings, bundle)
    running.users.add("bench-agent", "agent", "bench-password-1")
    url = running.http_url
    published: dict[str, float] = {}  # key → ms since the epoch (first publication)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--headless=new", "--use-fake-ui-for-media-stream",
                      "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={_mic(data, folder)}%noloop",
                      "--autoplay-policy=no-user-gesture-required"])
            page = await browser.new_page()
            await page.goto(f"{url}/login")
            await page.fill("#name", "bench-agent")
            await page.fill("#password", "bench-password-1")
            await page.click("#submit")
            await page.wait_for_function("() => window.switchboard && "
                                         "window.switchboard.state === 'available'",
                                         timeout=20_000)
            caller = asyncio.ensure_future(call_bot(url, caller_pcm, listen_s=2.0,
                                                    key_after_final="0"))
            await page.wait_for_function("() => window.switchboard.state === 'ringing'",
                                         timeout=90_000, polling=100)
            call_id = await page.evaluate("() => window.switchboard.callId")
            call = running.center.calls[call_id].call

            def stamp(event) -> None:
                key = _key(event.to_dict())
                if key is not None and key not in published:
                    published[key] = time.time() * 1000.0

            call.bus.subscribe(stamp)
            await page.click("#answer")
            await page.wait_for_function("() => window.switchboard.state === 'in call'",
                                         timeout=30_000, polling=100)
            await asyncio.sleep(3.0)  # the page's event socket opens and replays history
            # Only what is published from now on is timed: the replay of the call so far
            # is drawn at once, seconds after those events were published.
            since = time.time() * 1000.0
            rng = random.Random(7)
            for i in range(args.markers):
                if i % 2 == 0:
                    event = CoachPrompt(call_id=call_id, leg="agent", t_audio=call.t_audio(),
                                        prompt_id=100_000 + i, rule="bench", spoken="Bench.",
                                        detail=f"marker {i}", played=False, reason="bench")
                else:
                    event = TranscriptPartial(call_id=call_id, leg="agent",
                                              t_audio=call.t_audio(), utterance=100_000 + i,
                                              text=f"bench marker {i}")
                call.publish(event)
                await asyncio.sleep(args.every_ms / 1000.0 * rng.uniform(0.5, 1.5))
            await asyncio.sleep(2.0)
            rendered = await page.evaluate("() => window.switchboard.rendered")
            # The two clocks the figures compare, read together: what the page's clock
            # (timeOrigin + now) says minus the wall clock it runs on (Date.now()).
            skew_ms = await page.evaluate(
                "() => performance.timeOrigin + performance.now() - Date.now()")
            if await page.is_enabled("#hangup"):  # the caller may have hung up first
                await page.click("#hangup")
            await asyncio.wait_for(caller, 120)
            await browser.close()
    finally:
        await serve.stop(running)

    drawn: dict[str, float] = {}
    for r in rendered:
        drawn.setdefault(r["key"], r["at"])
    marker_keys = {f"prompt:{100_000 + i}" if i % 2 == 0 else f"partial:agent:{100_000 + i}"
                   for i in range(args.markers)}
    markers, real = [], {}
    for key, at in published.items():
        if key not in drawn or at < since:
            continue
        ms = drawn[key] - at
        if key in marker_keys:
            markers.append(ms)
        else:
            real.setdefault(key.split(":")[0], []).append(ms)
    budget = settings.budgets.budgets.get("event_to_screen")
    budget_ms = budget.budget_ms if budget else 300.0

    def row(ms: list[float]) -> dict:
        p50, p95 = p50_p95(ms)
        return {"n": len(ms), "p50": round(p50, 1), "p95": round(p95, 1),
                "min": round(min(ms), 1) if ms else 0.0,
                "max": round(max(ms), 1) if ms else 0.0,
                "over_budget": sum(1 for m in ms if m > budget_ms)}

    everything = markers + [m for ms in real.values() for m in ms]
    return {"machine": machine(), "markers": args.markers, "every_ms": args.every_ms,
            "budget_ms": budget_ms, "target_p50_ms": TARGET_P50_MS,
            "event_to_screen": {"markers": row(markers), "call_events": row(
                [m for ms in real.values() for m in ms]), "all": row(everything),
                "by_kind": {k: row(v) for k, v in sorted(real.items())}},
            "published": len(published), "drawn": len(drawn),
            "page_clock_skew_ms": round(skew_ms, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markers", type=int, default=400)
    ap.add_argument("--every-ms", type=float, default=100.0)
    ap.add_argument("--json", default=str(ROOT / "out" / "bench_coach_view.json"))
    args = ap.parse_args()
    from loguru import logger

    logger.remove()  # the model libraries' debug lines would bury the table
    logger.add(sys.stderr, level="WARNING")
    result = asyncio.run(run(args))
    e2s = result["event_to_screen"]
    print(f"\nevent to screen (ms), budget {result['budget_ms']:.0f}, "
          f"target p50 {TARGET_P50_MS:.0f}; page clock - wall clock "
          f"{result['page_clock_skew_ms']:+.2f} ms")
    print(f"{'events':24} {'n':>4} {'p50':>7} {'p95':>7} {'min':>7} {'max':>7} "
          f"{'>budget':>8}")
    for name, r in [("markers", e2s["markers"]), ("call events", e2s["call_events"]),
                    *[(f"  {k}", v) for k, v in e2s["by_kind"].items()], ("all", e2s["all"])]:
        print(f"{name:24} {r['n']:4d} {r['p50']:7.1f} {r['p95']:7.1f} {r['min']:7.1f} "
              f"{r['max']:7.1f} {r['over_budget']:8d}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
