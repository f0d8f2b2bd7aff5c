"""The HTTP side of the server: health, the token-protected JSON API, the event WebSocket
and Prometheus metrics, over a real call with a recorded caller."""

import asyncio

import aiohttp
import pytest
from aiohttp import web
from switchboard.coach_ui.app import make_app
from switchboard.pipeline.budgets import Metrics
from switchboard.telephony.file_edge import FileEdge

from switchboard.callcenter import CallCenter
from tests.helpers import generous_budgets

TOKEN = "s3cret-token"


async def serve_app(center, store=None):
    metrics = center.metrics
    app = make_app(center, store, TOKEN, metrics.registry)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_api_needs_the_token_and_shows_the_live_call_and_its_events(
        settings_factory, bundle, data):
    from switchboard.telephony.audio_file import load

    settings = generous_budgets(settings_factory())
    center = CallCenter(settings, bundle, metrics=Metrics())
    audio = load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio[:40000]

    async def main():
        runner, url = await serve_app(center)
        await center.prewarm()
        caller = FileEdge.from_audio(audio, peer="file:caller", hang_up=False)
        call = center.new_call("test")
        task = asyncio.ensure_future(center.run_call(call, caller))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        out = {}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/health") as r:
                out["health"] = (r.status, await r.json())
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                for path in ("/api/calls", f"/api/calls/{call.call_id}",
                             f"/api/calls/{call.call_id}/events"):
                    async with http.get(url + path, headers=headers) as r:
                        out.setdefault("refused", []).append(r.status)
            async with http.ws_connect(f"{url}/api/calls/{call.call_id}/events",
                                       headers=auth) as ws:
                kinds = []
                async for msg in ws:
                    event = msg.json()
                    kinds.append(event["kind"])
                    if event["kind"] == "transcript_final":
                        break
                out["ws"] = kinds
            async with http.get(f"{url}/api/calls", headers=auth) as r:
                out["calls"] = await r.json()
            async with http.get(f"{url}/api/calls/{call.call_id}", headers=auth) as r:
                out["call"] = await r.json()
            caller.leave()
            await asyncio.wait_for(task, 30)
            async with http.get(f"{url}/metrics") as r:
                out["metrics"] = await r.text()
        await runner.cleanup()
        return out

    out = asyncio.run(main())
    assert out["health"][0] == 200 and out["health"][1]["live_calls"] == 1
    assert out["refused"] == [401] * 6
    assert out["ws"][0] == "leg_joined" and out["ws"][-1] == "transcript_final"
    assert [c["call_id"] for c in out["calls"]["live"]] == [out["call"]["call_id"]]
    assert out["call"]["state"] == "bot" and out["call"]["context"]["transcript"]
    assert 'switchboard_stage_latency_seconds_count{step="asr_final"}' in out["metrics"]
    assert "switchboard_live_calls 0.0" in out["metrics"]


def test_an_agents_session_opens_only_reading_its_calls_routes(monkeypatch):
    """Without the token, an agent's session passes the API's guard only to GET a call or
    its events, and only the calls the agent may read: no other method, path or call."""
    from aiohttp.test_utils import make_mocked_request
    from switchboard.coach_ui import agent_pages, app

    asked = []
    monkeypatch.setattr(agent_pages, "may_read_call",
                        lambda request, call_id: asked.append(call_id) or call_id == "mine")
    opens = [(m, p) for m, p in (
        ("GET", "/api/calls/mine"), ("GET", "/api/calls/mine/events"),
        ("POST", "/api/calls/mine"), ("DELETE", "/api/calls/mine/events"),
        ("GET", "/api/calls/mine/audio"), ("GET", "/api/calls/mine/events/x"),
        ("GET", "/api/calls"), ("GET", "/api/calls/theirs"))
        if app._agents_own_call(make_mocked_request(m, p))]
    assert opens == [("GET", "/api/calls/mine"), ("GET", "/api/calls/mine/events")]
    assert set(asked) == {"mine", "theirs"}
