"""Nobody reads a call they may not: every surface, three kinds of visitor.

A real server (serve.start) takes a WebRTC call from an aiortc caller who reads out a card
number (spoken by the bundled Piper voice: no recording of one is in ../shared/data) and
presses 0; the handoff rings agent alice, who answers from an aiortc peer through the
agent page's signalling (/agent/ws, /agent/answer). Then, on every surface — the pages,
the JSON API, the event WebSocket, the WebRTC signalling (an agent's answer, a
supervisor's listen), the board, the after-call record — it checks
an unauthenticated visitor, another agent (bob), alice herself, and the demo supervisor
that the fresh database was given with a random password.

It also checks what serve does for privacy: the stored transcript holds no card number
while alice saw it live, and no log record carries it while the server runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import aiohttp
import numpy as np
import pytest
from switchboard.pipeline.redact import redact

from switchboard import serve
from tests.helpers import run_within
from tests.webrtc_client import RecordingTrack, call_bot

pytestmark = pytest.mark.slow

CARD_WORDS = "four one one one, one one one one, one one one one, one one one one"
LONG_RUN = re.compile(r"\d[\d ,-]{6,}\d")


def card_caller(bundle) -> np.ndarray:
    """The caller: a pause for the greeting, the card number, then a long silence."""
    from switchboard.models.tts import PiperTTS

    tts = PiperTTS(bundle.settings.tts.voice, length_scale=1.1, noise=False)
    speech = tts.synthesize(f"Hello. My card number is {CARD_WORDS}.")
    pcm = np.concatenate([np.zeros(4 * 16000, np.float32), 0.6 * speech,
                          np.zeros(60 * 16000, np.float32)])
    return (np.clip(pcm, -1, 1) * 32767).astype(np.int16)


def strings(value) -> list[str]:
    """Every string in a JSON value (the words a record holds; its times are numbers)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def session() -> aiohttp.ClientSession:
    # aiohttp keeps cookies of an IP address host only with unsafe=True.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, url: str, name: str, password: str) -> int:
    async with http.post(f"{url}/login", json={"name": name, "password": password}) as r:
        return r.status


async def get(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url, allow_redirects=False) as r:
        await r.read()
        return r.status


async def ws_status(http: aiohttp.ClientSession, url: str) -> tuple[int, list[dict]]:
    """The WebSocket handshake's status, and the messages got in the first second."""
    try:
        ws = await http.ws_connect(url)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status, []
    got = []
    try:
        for _ in range(200):
            msg = await ws.receive(timeout=1.0)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            got.append(json.loads(msg.data))
    except TimeoutError:
        pass
    finally:
        await ws.close()
    return 101, got


async def post_answer(http: aiohttp.ClientSession, url: str, call_id: str, sdp: str) -> int:
    async with http.post(f"{url}/agent/answer", json={"call_id": call_id, "sdp": sdp}) as r:
        await r.read()
        return r.status


async def agent_answers(http: aiohttp.ClientSession, url: str, call_id: str):
    """An aiortc peer answering ``call_id`` as the agent page does; returns it."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(RecordingTrack(np.zeros(16000 * 90, np.int16)))
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(f"{url}/agent/answer",
                         json={"call_id": call_id, "sdp": pc.localDescription.sdp}) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
    return pc


async def offer_sdp() -> str:
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(RecordingTrack(np.zeros(16000, np.int16)))
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def supervise(http: aiohttp.ClientSession, url: str, call_id: str) -> int:
    """Ask to listen to the call from the board's signalling (a fresh WebRTC offer)."""
    async with http.post(f"{url}/board/supervise", json={
            "call_id": call_id, "mode": "listen", "sdp": await offer_sdp()}) as r:
        await r.read()
        return r.status


async def surfaces(http: aiohttp.ClientSession, url: str, call_id: str,
                   listen: bool = True) -> dict:
    """What one visitor gets from each surface of call ``call_id`` (``listen``: also ask
    to listen to it, as a supervisor's board does)."""
    events_status, events = await ws_status(http, f"{url}/api/calls/{call_id}/events")
    return {
        "board_page": await get(http, f"{url}/board"),
        "board_ws": (await ws_status(http, f"{url}/board/ws"))[0],
        "supervise": await supervise(http, url, call_id) if listen else None,
        "agent_page": await get(http, f"{url}/agent"),
        "agent_ws": (await ws_status(http, f"{url}/agent/ws"))[0],
        "api_list": await get(http, f"{url}/api/calls"),
        "api_call": await get(http, f"{url}/api/calls/{call_id}"),
        "events_ws": events_status, "events": events,
        "record_page": await get(http, f"{url}/record/{call_id}"),
        "record_json": await get(http, f"{url}/record/{call_id}/json"),
    }


def test_every_surface_refuses_who_may_not_read_the_call(server_settings, bundle, data,
                                                         caplog):
    settings = server_settings
    settings.handoff.ring_s = 30.0
    pcm = card_caller(bundle)
    caplog.set_level(logging.INFO)

    async def main():
        running = await serve.start(settings, bundle)
        out: dict = {"demo": dict(running.demo_users), "banner": serve.banner(running)}
        url = running.http_url
        running.users.add("alice", "agent", "alice-password-1")
        running.users.add("bob", "agent", "bob-password-1")
        supervisor, (_, sup_password) = next(
            (n, v) for n, v in running.demo_users.items() if v[0] == "supervisor")
        try:
            async with session() as anon, session() as alice, session() as bob, \
                    session() as sup:
                out["logins"] = [await login(alice, url, "alice", "alice-password-1"),
                                 await login(bob, url, "bob", "bob-password-1"),
                                 await login(sup, url, supervisor, sup_password),
                                 await login(anon, url, supervisor, "password")]
                desk = await alice.ws_connect(f"{url}/agent/ws")
                caller = asyncio.ensure_future(call_bot(url, pcm, listen_s=5.0,
                                                        key_after_final="0"))
                ringing = None
                for _ in range(600):  # bounded: the handoff rings within a minute
                    msg = await desk.receive(timeout=120)
                    body = json.loads(msg.data)
                    if body.get("kind") == "ringing":
                        ringing = body
                        break
                assert ringing is not None
                call_id = ringing["call_id"]
                # Ringing alice: bob cannot take her call, an anonymous page cannot either.
                sdp = await offer_sdp()
                out["answer"] = {"anon": await post_answer(anon, url, call_id, sdp),
                                 "bob": await post_answer(bob, url, call_id, sdp)}
                peer = await agent_answers(alice, url, call_id)
                for _ in range(300):
                    if running.center.calls[call_id].agent == "alice":
                        break
                    await asyncio.sleep(0.1)
                # The card number reaches alice live (the positive control of the store's
                # redaction below): wait for the caller's words on her event stream.
                for _ in range(60):
                    _, live = await ws_status(alice, f"{url}/api/calls/{call_id}/events")
                    said = " ".join(e.get("text", "") for e in live
                                    if e.get("kind") == "transcript_final")
                    if redact(said) != said:
                        break
                out["live_said"] = said
                logging.getLogger("switchboard.test").warning("caller said: %s", said)
                out["live"] = {name: await surfaces(http, url, call_id, name != "supervisor")
                               for name, http in (("anon", anon), ("bob", bob),
                                                  ("alice", alice), ("supervisor", sup))}
                await peer.close()  # alice hangs up: the call ends
                out["caller"] = await asyncio.wait_for(caller, 60)
                await desk.close()
                for _ in range(100):
                    if not running.center.calls:
                        break
                    await asyncio.sleep(0.1)
                running.store.flush()
                out["after"] = {name: await surfaces(http, url, call_id) for name, http in
                                (("anon", anon), ("bob", bob), ("alice", alice),
                                 ("supervisor", sup))}
                async with alice.get(f"{url}/record/{call_id}/json") as r:
                    out["record"] = await r.json()
        finally:
            await serve.stop(running)
        logging.getLogger("switchboard.test").warning("after stop: %s", out["live_said"])
        return out

    out = run_within(main(), 300)

    # The fresh database got a demo agent and supervisor, random passwords, in the banner.
    assert {role for role, _ in out["demo"].values()} == {"agent", "supervisor"}
    for name, (_, password) in out["demo"].items():
        assert len(password) >= 12 and f"{name}, password {password}" in out["banner"]
    assert out["logins"] == [200, 200, 200, 401]

    live = out["live"]
    # Unauthenticated: nothing at all.
    anon = live["anon"]
    assert (anon["agent_page"], anon["record_page"]) == (302, 302)  # to the log-in page
    assert [anon[k] for k in ("agent_ws", "api_list", "api_call", "events_ws",
                              "record_json")] == [401] * 5, anon
    assert anon["events"] == []
    assert (anon["board_page"], anon["board_ws"], anon["supervise"]) == (302, 401, 401), anon
    # Another agent: their own page, nothing of alice's call.
    bob = live["bob"]
    assert (bob["agent_page"], bob["agent_ws"]) == (200, 101)
    assert [bob[k] for k in ("api_list", "api_call", "events_ws")] == [401] * 3, bob
    assert (bob["record_page"], bob["record_json"]) == (403, 403) and bob["events"] == []
    # WebRTC signalling: an agent asking to listen to another agent's call is refused.
    assert (bob["board_page"], bob["board_ws"], bob["supervise"]) == (403, 403, 403), bob
    # Signalling: neither may answer the call ringing for alice.
    assert out["answer"] == {"anon": 401, "bob": 409}, out["answer"]
    # Alice reads her call and its events, but not the list of every call.
    mine = live["alice"]
    assert (mine["api_call"], mine["events_ws"], mine["record_json"]) == (200, 101, 200)
    assert mine["api_list"] == 401
    assert mine["supervise"] == 403  # not even on her own call: listening is a supervisor's
    assert any(e.get("kind") == "transcript_final" for e in mine["events"])
    # The supervisor reads the call, its events and its record, and has the board.
    sup = live["supervisor"]
    assert (sup["api_call"], sup["events_ws"], sup["record_json"]) == (200, 101, 200), sup
    assert (sup["board_page"], sup["board_ws"]) == (200, 101), sup

    # After the call: alice and the supervisor read its record; bob and strangers do not.
    after = out["after"]
    assert after["anon"]["record_json"] == 401 and after["bob"]["record_json"] == 403
    assert after["alice"]["record_json"] == 200 and after["supervisor"]["record_json"] == 200
    assert after["alice"]["api_call"] == 401  # her session's live access ended with the call
    record = out["record"]
    assert record["summary"]["agent"] == "alice"
    assert record["summary"]["after_call"]["outcome"].startswith("handled by alice")

    # Redaction: alice heard the number live; the store and the logs never hold it.
    assert redact(out["live_said"]) != out["live_said"], out["live_said"]
    said = [t for t in strings(record) if t != record["call_id"]]
    assert said and not [t for t in said if LONG_RUN.search(t)], said
    assert "[redacted]" in " ".join(t["text"] for t in record["transcript"])
    during = [r.getMessage() for r in caplog.records if "caller said" in r.getMessage()]
    assert during and "[redacted]" in during[0] and not LONG_RUN.search(during[0]), during
    after_stop = [r.getMessage() for r in caplog.records if "after stop" in r.getMessage()]
    assert after_stop and redact(after_stop[0]) != after_stop[0]  # the filter left with serve
