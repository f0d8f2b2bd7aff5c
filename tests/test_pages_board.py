"""The supervisor board (coach_ui/supervisor_pages.py, static/board.*): who may use it, 50
live calls on it, alerts arriving live, and a supervisor in Debian's Chromium stepping into
a call: listen → whisper → barge over one WebRTC connection, each mode proven on what the
caller and the agent actually received.

Calls are real Call objects of the running call center, their parties real recordings on
FileEdge legs (the same seam as SIP and WebRTC parties), so a test can read every frame a
party heard. Risk alerts are published on a call's bus as the coach publishes them.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from switchboard.pipeline.events import EmotionScore, IntentDetected, RiskAlert

from tests.correlate import presence
from tests.helpers import run_within
from tests.test_pages_caller import CHROMIUM, need_chromium
from tests.test_supervision import (
    HEARD,
    agent_voice,
    caller_voice,
    edge,
    frames,
    live_call,
    supervisor_voice,
)

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "img" / "board.png"


@pytest.fixture()
def settings(server_settings):
    return server_settings


async def start_app(settings, tmp_path):
    """The HTTP app over a call center without models (no call here is analysed): users
    alice (agent) and sue (supervisor); (runner, url, center)."""
    from prometheus_client import CollectorRegistry
    from switchboard.coach_ui.app import make_app

    from switchboard.browser_agents import AgentDesk
    from switchboard.callcenter import CallCenter
    from switchboard.users import UserStore

    center = CallCenter(settings, bundle=None)
    users = UserStore(f"sqlite:///{tmp_path / 'users.db'}")
    users.add("alice", "agent", "alice-password-1")
    users.add("sue", "supervisor", "sue-password-1")
    app = make_app(center, None, "api-token-for-tests", CollectorRegistry(), users=users,
                   desk=AgentDesk())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}", center


def session() -> aiohttp.ClientSession:
    # aiohttp keeps cookies of an IP address host only with unsafe=True.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, url: str, name: str, password: str) -> int:
    async with http.post(f"{url}/login", json={"name": name, "password": password}) as r:
        return r.status


async def statuses(http: aiohttp.ClientSession, url: str, call_id: str,
                   headers: dict | None = None) -> dict[str, int]:
    """The status of every supervisor surface (and the call's API) for this session."""
    out = {}
    for path in ("/board", "/board/ws", f"/api/calls/{call_id}",
                 f"/api/calls/{call_id}/events", "/api/calls"):
        async with http.get(url + path, allow_redirects=False, headers=headers) as r:
            out[path] = r.status
    for path, body in (("/board/supervise", {"call_id": call_id, "mode": "listen",
                                             "sdp": "v=0"}),
                       ("/board/mode", {"call_id": call_id, "mode": "barge"}),
                       ("/board/leave", {"call_id": call_id})):
        async with http.post(url + path, json=body, headers=headers) as r:
            out[path] = r.status
    return out


def test_only_a_supervisor_uses_the_board_and_steps_in(settings, data, tmp_path):
    async def main():
        runner, url, center = await start_app(settings, tmp_path)
        record = await live_call(center, edge(caller_voice(data, 20), "caller"),
                                 edge(agent_voice(data, 20), "agent"), agent_name="bob")
        call_id = record.call.call_id
        out = {}
        try:
            async with session() as anon:
                out["anon"] = await statuses(anon, url, call_id)
            async with session() as alice:
                assert await login(alice, url, "alice", "alice-password-1") == 200
                out["agent"] = await statuses(alice, url, call_id)
            async with session() as sue:
                assert await login(sue, url, "sue", "sue-password-1") == 200
                # Another site's page driving the supervisor's session: refused.
                out["cross"] = await statuses(sue, url, call_id,
                                              {"Origin": "http://evil.example"})
                async with sue.get(f"{url}/board") as r:
                    out["page"] = (r.status, "board.js" in await r.text())
                async with sue.get(f"{url}/api/calls/{call_id}") as r:
                    out["api"] = (r.status, (await r.json())["number"])
                async with sue.ws_connect(f"{url}/board/ws") as ws:
                    hello = json.loads((await ws.receive(timeout=5)).data)
                    rows = json.loads((await ws.receive(timeout=5)).data)
                out["ws"] = (hello, rows)
                bad = {}
                for name, path, body in (
                        ("mode", "/board/mode", {"call_id": call_id, "mode": "spy"}),
                        ("no_call", "/board/supervise", {"call_id": "nope", "mode": "listen",
                                                         "sdp": "v=0"}),
                        ("bad_sdp", "/board/supervise", {"call_id": call_id,
                                                         "mode": "listen", "sdp": "v=0"}),
                        ("not_on", "/board/mode", {"call_id": call_id, "mode": "barge"})):
                    async with sue.post(url + path, json=body) as r:
                        bad[name] = (r.status, await r.text())
                async with sue.post(f"{url}/board/mode", data="not json",
                                    headers={"Content-Type": "application/json"}) as r:
                    bad["not_json"] = (r.status, await r.text())
                out["bad"] = bad
            out["legs"] = sorted(record.call.legs)
        finally:
            record.call.end("test over")
            await asyncio.wait_for(record.task, 10)
            await runner.cleanup()
        return out

    out = run_within(main(), 60)
    assert out["anon"] == {"/board": 302, "/board/ws": 401, "/board/supervise": 401,
                           "/board/mode": 401, "/board/leave": 401,
                           f"/api/calls/{out['ws'][1]['rows'][0]['call_id']}": 401,
                           f"/api/calls/{out['ws'][1]['rows'][0]['call_id']}/events": 401,
                           "/api/calls": 401}, out["anon"]
    # An agent may not watch, listen to or read another agent's call.
    assert set(out["agent"].values()) <= {401, 403}, out["agent"]
    assert all(out["agent"][p] == 403 for p in ("/board", "/board/ws", "/board/supervise",
                                                "/board/mode", "/board/leave")), out["agent"]
    assert all(out["cross"][p] == 403 for p in ("/board/ws", "/board/supervise",
                                                "/board/mode", "/board/leave")), out["cross"]
    assert out["page"] == (200, True)
    assert out["api"][0] == 200 and out["api"][1]
    hello, rows = out["ws"]
    assert hello == {"kind": "hello", "supervisor": "sue"}
    row = rows["rows"][0]
    assert (row["state"], row["agent"], row["number"]) == ("agent", "bob", out["api"][1])
    bad = out["bad"]
    assert bad["mode"][0] == 400 and "listen, whisper, barge" in bad["mode"][1], bad
    assert bad["no_call"][0] == 404, bad
    assert bad["bad_sdp"][0] == 400 and "error" in json.loads(bad["bad_sdp"][1]), bad
    assert bad["not_on"][0] == 409, bad
    assert bad["not_json"][0] == 400, bad
    assert out["legs"] == ["agent", "caller"]  # nothing refused joined the call


def test_the_board_carries_50_calls_ranked_by_risk_with_live_alerts(settings, data,
                                                                    tmp_path):
    """50 live calls of real recordings; a storm of events on one call reaches the board
    as at most one row per tick; a risk alert moves its call to the top of the page in
    Chromium, its card number masked."""
    need_chromium()
    from playwright.async_api import async_playwright

    from tests.test_pages_agent import until

    caller = caller_voice(data, 60)
    agent = agent_voice(data, 60)

    async def main():
        runner, url, center = await start_app(settings, tmp_path)
        records = []
        out: dict = {}
        try:
            for i in range(50):
                # Every other call bridged to an agent; the rest with the bot.
                records.append(await live_call(
                    center, edge(np.roll(caller, i * 8000), f"caller{i}"),
                    edge(np.roll(agent, i * 8000), f"agent{i}") if i % 2 else None,
                    agent_name=f"agent{i}"))
            calls = [r.call for r in records]
            for i, call in enumerate(calls):
                call.publish(EmotionScore(call_id=call.call_id, leg="caller", t_audio=1.0,
                                          rolling_anger=(i % 7) * 0.5))
            async with async_playwright() as p:
                chromium = await p.chromium.launch(
                    executable_path=CHROMIUM, headless=True,
                    args=["--no-sandbox", "--headless=new"])
                page = await chromium.new_page(viewport={"width": 1400, "height": 900})
                await page.goto(f"{url}/board")
                assert page.url.endswith("/login")
                await page.fill("#name", "sue")
                await page.fill("#password", "sue-password-1")
                await page.click("#submit")
                await page.wait_for_url(f"{url}/board", timeout=10_000)
                await until(page, "() => (window.switchboard.order || []).length === 50",
                            15_000)
                out["before"] = await page.evaluate("() => window.switchboard.order")
                # A storm on one call (as a busy graph publishes): many events, few rows.
                hot = calls[10]
                async with session() as sue:
                    assert await login(sue, url, "sue", "sue-password-1") == 200
                    async with sue.ws_connect(f"{url}/board/ws") as ws:
                        await ws.receive(timeout=5)  # hello
                        first = json.loads((await ws.receive(timeout=5)).data)
                        loop = asyncio.get_running_loop()
                        began = loop.time()
                        # 30 bursts of 20 events, 0.1 s apart, the anger rising 0.1 every
                        # 10: a page sent a row per change (or per burst) would get 10-20
                        # rows a second of this call.
                        for n in range(600):
                            hot.publish(EmotionScore(
                                call_id=hot.call_id, leg="caller", t_audio=n * 0.01,
                                rolling_anger=3.0 + n * 0.01))
                            hot.publish(IntentDetected(call_id=hot.call_id, leg="caller",
                                                       t_audio=n * 0.01, intent="card_lost"))
                            if n % 20 == 19:
                                await asyncio.sleep(0.1)
                        out["storm_s"] = loop.time() - began
                        messages = []
                        for _ in range(5000):  # everything sent during the storm
                            try:
                                msg = await ws.receive(timeout=0.6)
                            except TimeoutError:
                                break
                            messages.append(json.loads(msg.data))
                out["first_rows"] = len(first["rows"])
                out["storm"] = [sum(r["call_id"] == hot.call_id for r in m["rows"])
                                for m in messages]
                out["storm_last"] = next(r for m in reversed(messages) for r in m["rows"]
                                         if r["call_id"] == hot.call_id)
                # An alert on a quiet call: to the top of the page, masked.
                target = calls[37]
                target.publish(RiskAlert(call_id=target.call_id, leg="caller", t_audio=2.0,
                                         level=9.5, reason="anger",
                                         detail="caller read card 4111 1111 1111 1111"))
                await until(page, "() => window.switchboard.order[0] === "
                            f"'{target.call_id}'", 10_000)
                out["top"] = await page.evaluate(
                    "() => document.querySelector('#rows tr').innerText")
                out["after"] = await page.evaluate("() => window.switchboard.order")
                await chromium.close()
        finally:
            for r in records:
                r.call.end("test over")
            await asyncio.wait([r.task for r in records], timeout=20)
            await runner.cleanup()
        return out

    out = run_within(main(), 150)
    assert out["first_rows"] == 50
    assert len(out["before"]) == 50 and len(set(out["before"])) == 50
    # 1200 events on the hot call became a few rows, never two in one message, and no
    # more than one per board tick (4 a second) over the storm (a slower loop: fewer).
    ticks = out["storm_s"] / settings.supervision.board_interval_s
    assert max(out["storm"]) == 1, out["storm"]
    assert 1 <= sum(out["storm"]) <= ticks + 2, (out["storm"], ticks)
    assert out["storm_last"]["intent"] == "card_lost"
    assert out["storm_last"]["anger"] == 9.0, out["storm_last"]  # the last one, 8.99
    top = out["top"]
    assert "anger" in top and "[redacted]" in top and "4111" not in top, top
    assert len(out["after"]) == 50


#: Two-second pieces of one voice against another's speech correlate by chance up to
#: ~0.17 (measured); a piece that is there scores 0.65-0.9.
NOT_HEARD_PIECES = 0.3


def best_presence(needle: np.ndarray, haystack: np.ndarray, chunk: int = 32000) -> float:
    """:func:`presence` of the needle's two-second pieces (those with speech), the best:
    a mixer that fell behind under load drops a few frames, so a long needle is no longer
    one contiguous piece of what was heard, but its pieces are."""
    pieces = [needle[i:i + chunk] for i in range(0, len(needle) - chunk + 1, chunk)]
    pieces = [x for x in pieces if np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 300]
    return max((presence(x, haystack) for x in pieces), default=0.0)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_a_supervisor_in_chromium_listens_whispers_and_barges_on_a_live_call(
        server_settings, bundle, data, tmp_path):
    """The board in Chromium (its fake microphone: a supervisor's recorded voice) steps
    into a bridged call whose caller's speech is analysed live; one WebRTC connection, the
    mode switched by the page's buttons. In each mode's window the supervisor's voice, as
    the server received it, is searched for in what the caller and the agent heard."""
    need_chromium()
    from playwright.async_api import async_playwright
    from switchboard.pipeline.events import SupervisorJoined

    from switchboard import serve
    from tests.test_pages_agent import until

    settings = server_settings
    mic = write_wav(tmp_path / "supervisor-mic.wav", supervisor_voice(data, 40))
    caller = edge(caller_voice(data, 120), "sip:caller")
    agent = edge(agent_voice(data, 120), "sip:alice")

    async def main():
        running = await serve.start(settings, bundle)
        running.users.add("sue", "supervisor", "sue-password-1")
        center = running.center
        record = await live_call(center, caller, agent, agent_name="alice", analyse=True,
                                 record_to=tmp_path / "rec")
        call = record.call
        # Two more calls on the board, one the coach has flagged.
        others = [await live_call(center, edge(np.roll(caller_voice(data, 60), 40000),
                                               "sip:c2"),
                                  edge(agent_voice(data, 60), "sip:bob"), agent_name="bob"),
                  await live_call(center, edge(caller_voice(data, 60), "webrtc:c3"))]
        others[0].call.publish(RiskAlert(call_id=others[0].call.call_id, leg="caller",
                                         t_audio=3.0, level=6.0, reason="compliance",
                                         detail="account change before identity check"))
        joined: list[tuple[str, int]] = []
        call.bus.subscribe(lambda e: joined.append((e.mode, call.mixer.ticks))
                           if isinstance(e, SupervisorJoined) else None)
        url = running.http_url
        leg = "supervisor:sue"
        windows = []
        out: dict = {}
        try:
            async with async_playwright() as p:
                chromium = await p.chromium.launch(
                    executable_path=CHROMIUM, headless=True,
                    args=["--no-sandbox", "--headless=new", "--use-fake-ui-for-media-stream",
                          "--use-fake-device-for-media-stream",
                          f"--use-file-for-fake-audio-capture={mic}",
                          "--autoplay-policy=no-user-gesture-required"])
                page = await chromium.new_page(viewport={"width": 1280, "height": 560})
                await page.goto(f"{url}/login")
                await page.fill("#name", "sue")
                await page.fill("#password", "sue-password-1")
                await page.click("#submit")
                await page.wait_for_url(f"{url}/board", timeout=10_000)
                await until(page, f"() => '{call.call_id}' in window.switchboard.rows",
                            10_000)
                row = f"#rows tr[data-call='{call.call_id}']"
                for mode in ("listen", "whisper", "barge", "listen"):
                    await page.click(f"{row} button.{mode}")
                    await until(page, f"() => window.switchboard.mode === '{mode}'", 20_000)
                    if mode == "listen" and not windows:
                        await until(page, "() => window.switchboard.state === 'on call'",
                                    20_000)
                        await asyncio.sleep(1.0)  # the first media through
                    start = (len(caller.heard), len(agent.heard), call.legs[leg].frames_in,
                             call.mixer.ticks, call.legs["caller"].frames_in,
                             call.legs["agent"].frames_in)
                    await asyncio.sleep(5.0)
                    end = (len(caller.heard), len(agent.heard), call.legs[leg].frames_in,
                           call.mixer.ticks, call.legs["caller"].frames_in,
                           call.legs["agent"].frames_in)
                    windows.append((mode, start, end))
                    if mode == "barge":
                        await until(page, "() => window.switchboard.rows["
                                    f"'{call.call_id}'].supervisors.sue === 'barge'", 5000)
                        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                        await page.screenshot(path=str(SCREENSHOT))
                out["page"] = await page.evaluate("() => window.switchboard")
                await page.click("#leave")
                for _ in range(50):
                    if call.legs[leg].left_at is not None:
                        break
                    await asyncio.sleep(0.1)
                out["left"] = call.legs[leg].end_reason
                await chromium.close()
        finally:
            for r in (record, *others):
                r.call.end("test over")
            await asyncio.wait([r.task for r in (record, *others)], timeout=20)
            await serve.stop(running)
        out["joined"] = joined
        out["recordings"] = dict(call.recordings)
        return windows, out

    windows, out = run_within(main(), 240)
    import soundfile as sf

    said = sf.read(str(out["recordings"]["supervisor:sue-said"]), dtype="int16")[0]
    heard = sf.read(str(out["recordings"]["supervisor:sue-heard"]), dtype="int16")[0]
    caller_said = np.frombuffer(b"".join(caller._frames), dtype="<i2")
    agent_said = np.frombuffer(b"".join(agent._frames), dtype="<i2")
    first_tick = out["joined"][0][1]
    scores = []
    for mode, start, end in windows:
        needle = said[(start[2] + 25) * 320:(end[2] - 25) * 320]
        sup_heard = heard[(start[3] - first_tick) * 320:(end[3] - first_tick) * 320]
        # The parties' own words in the window, found in what the supervisor heard.
        # (Said frames count as they arrive, heard ones per mixer tick: a mixer that fell
        # behind and resynchronised has fewer ticks than frames.)
        caller_needle = caller_said[(start[4] + 25) * 320:(end[4] - 25) * 320]
        agent_needle = agent_said[(start[5] + 25) * 320:(end[5] - 25) * 320]
        scores.append((mode, {
            "agent<-sup": best_presence(needle, frames(agent.heard, start[1], end[1])),
            "caller<-sup": best_presence(needle, frames(caller.heard, start[0], end[0])),
            "sup<-caller": best_presence(caller_needle, sup_heard),
            "sup<-agent": best_presence(agent_needle, sup_heard),
            "sup_rms": float(np.sqrt(np.mean(needle.astype(np.float64) ** 2))),
        }))
    print(scores)
    for mode, s in scores:
        assert s["sup_rms"] > 300, (mode, s)  # the supervisor spoke in every window
        assert s["sup<-caller"] > HEARD and s["sup<-agent"] > HEARD, (mode, s)
        if mode == "listen":
            assert s["agent<-sup"] < NOT_HEARD_PIECES and s["caller<-sup"] < NOT_HEARD_PIECES, s
        elif mode == "whisper":
            assert s["agent<-sup"] > HEARD and s["caller<-sup"] < NOT_HEARD_PIECES, s
        else:
            assert s["agent<-sup"] > HEARD and s["caller<-sup"] > HEARD, s
    page = out["page"]
    assert page["callPeak"] > 0.01, page  # the call's audio reached the page
    assert [m for m, _ in out["joined"]] == ["listen", "whisper", "barge", "listen", ""]
    assert out["left"] == "left"


def test_a_board_page_that_never_connects_leaves_no_silent_leg(settings, data, tmp_path):
    """A supervisor's offer answered, then the page gone before ICE: the leg it got is
    dropped after ``[supervision] connect_s`` (a real aiortc peer that stops there)."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from switchboard.pipeline.events import SupervisorJoined

    from tests.webrtc_client import RecordingTrack

    settings.supervision.connect_s = 1.0

    async def main():
        runner, url, center = await start_app(settings, tmp_path)
        record = await live_call(center, edge(caller_voice(data, 30), "caller"),
                                 edge(agent_voice(data, 30), "agent"))
        call = record.call
        modes: list[str] = []
        call.bus.subscribe(lambda e: modes.append(e.mode)
                           if isinstance(e, SupervisorJoined) else None)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(RecordingTrack(np.zeros(16000, np.int16)))
        await pc.setLocalDescription(await pc.createOffer())
        try:
            async with session() as sue:
                assert await login(sue, url, "sue", "sue-password-1") == 200
                async with sue.post(f"{url}/board/supervise", json={
                        "call_id": call.call_id, "mode": "whisper",
                        "sdp": pc.localDescription.sdp}) as r:
                    status, answer = r.status, await r.json()
            await pc.close()  # the page went away without connecting
            joined = sorted(call.legs)
            for _ in range(150):  # the leave's event comes once the connection is closed
                if "" in modes:
                    break
                await asyncio.sleep(0.1)
            reason = call.legs["supervisor:sue"].end_reason
            routes = call.routing.snapshot()
        finally:
            call.end("test over")
            await asyncio.wait_for(record.task, 10)
            await runner.cleanup()
        return status, answer, joined, reason, modes, routes

    status, answer, joined, reason, modes, routes = run_within(main(), 40)
    assert status == 200 and answer["mode"] == "whisper" and "a=" in answer["sdp"], answer
    assert joined == ["agent", "caller", "supervisor:sue"]
    assert reason == "not connected"
    assert modes == ["whisper", ""], modes
    assert all("supervisor:sue" not in sources for sources in routes.values()), routes
