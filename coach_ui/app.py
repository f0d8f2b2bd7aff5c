"""The HTTP side of ``switchboard serve``: health, the JSON API of calls, Prometheus metrics.

Routes:

- ``GET /health`` — liveness and the number of live calls (no call content);
- ``GET /metrics`` — Prometheus text: every stage's latency histograms and budget
  breaches across all calls, plus live/refused call counts (no call content);
- ``GET /api/calls`` — live calls and past ones from the store (``?status=``, ``?limit=``);
- ``GET /api/calls/{call_id}`` — one call: legs, routing, handoff and the context the agent
  gets (transcript so far, intent, anger) while live; the stored record afterwards;
- ``GET /api/calls/{call_id}/events`` — a WebSocket of the live call's events;
- ``GET /`` and ``GET /call`` — the caller page (public: anyone may call the bot; its
  call's audio and transcript travel on its own peer connection), ``/static/`` its files.

Everything under ``/api`` carries call content and needs the API token
(``Authorization: Bearer …``): nobody unauthenticated reads a call. A logged-in agent's
page (coach_ui/agent_pages.py) may read the one call it is rung for or on, nothing else;
a supervisor's session reads every call (coach_ui/supervisor_pages.py: the board).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, Gauge, generate_latest

log = logging.getLogger(__name__)

CENTER = web.AppKey("center", object)
STORE = web.AppKey("store", object)
TOKEN = web.AppKey("token", str)
REGISTRY = web.AppKey("registry", CollectorRegistry)
STARTED = web.AppKey("started", float)
STATIC = Path(__file__).parent / "static"
#: Pages load only their own files and talk only to this server.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob: mediastream:; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def make_app(center, store, token: str, registry: CollectorRegistry, users=None,
             desk=None) -> web.Application:
    """The aiohttp application over a running CallCenter and its store; with ``users``
    and ``desk`` (switchboard/browser_agents.py), the agents' log-in and page too."""
    app = web.Application(middlewares=[_auth])
    app[CENTER] = center
    app[STORE] = store
    app[TOKEN] = token
    app[REGISTRY] = registry
    app[STARTED] = time.time()
    _server_gauges(center, registry)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/calls/{call_id}", get_call)
    app.router.add_get("/api/calls/{call_id}/events", call_events)
    app.router.add_get("/", caller_page)
    app.router.add_get("/call", caller_page)
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    if users is not None and desk is not None:
        from switchboard.coach_ui import agent_pages

        agent_pages.install(app, users, desk, _page)
        from switchboard.coach_ui import supervisor_pages

        supervisor_pages.install(app, center, _page)
    return app


async def caller_page(request: web.Request) -> web.Response:
    return _page("caller.html")


def _page(name: str) -> web.Response:
    return web.Response(body=(STATIC / name).read_bytes(), content_type="text/html",
                        charset="utf-8", headers=PAGE_HEADERS)


@web.middleware
async def _auth(request: web.Request, handler):
    if request.path.startswith("/api/"):
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not (given and hmac.compare_digest(given, request.app[TOKEN])) and not (
                _agents_own_call(request) or _supervisor_reads(request)):
            return web.json_response({"error": "authentication required"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


def _agents_own_call(request: web.Request) -> bool:
    """A logged-in agent's page may read the one call it is rung for or on."""
    parts = request.path.split("/")  # "", "api", "calls", ID[, "events"]
    if len(parts) not in (4, 5) or parts[2] != "calls" or request.method != "GET":
        return False
    if len(parts) == 5 and parts[4] != "events":
        return False
    from switchboard.coach_ui.agent_pages import may_read_call

    return may_read_call(request, parts[3])


def _supervisor_reads(request: web.Request) -> bool:
    """A supervisor's session reads every call (the list, one call, its events)."""
    if request.method != "GET" or not request.path.startswith("/api/calls"):
        return False
    from switchboard.coach_ui.supervisor_pages import is_supervisor

    return is_supervisor(request)


async def health(request: web.Request) -> web.Response:
    center = request.app[CENTER]
    return web.json_response({"status": "ok", "live_calls": len(center.calls),
                              "uptime_s": round(time.time() - request.app[STARTED], 1)})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def list_calls(request: web.Request) -> web.Response:
    center, store = request.app[CENTER], request.app[STORE]
    status = request.query.get("status")
    try:
        limit = max(1, min(500, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a number") from None
    live = center.live() if status in (None, "live") else []
    past: list[dict[str, Any]] = []
    if store is not None and status != "live":
        past = await asyncio.to_thread(_past_calls, store, status, limit)
        live_ids = {c["call_id"] for c in live}
        past = [c for c in past if c["call_id"] not in live_ids]
    return _json({"live": live, "past": past})


async def get_call(request: web.Request) -> web.Response:
    center, store = request.app[CENTER], request.app[STORE]
    call_id = request.match_info["call_id"]
    record = center.calls.get(call_id)
    if record is not None:
        return _json(center.describe(record) | {"status": "live"})
    if store is not None:
        stored = await asyncio.to_thread(_stored_call, store, call_id)
        if stored is not None:
            return _json(stored)
    raise web.HTTPNotFound(text=f"no call {call_id}")


async def call_events(request: web.Request) -> web.WebSocketResponse:
    """The live call's events as JSON messages, from its start, then as they happen."""
    record = request.app[CENTER].calls.get(request.match_info["call_id"])
    if record is None:
        raise web.HTTPNotFound(text="no such live call")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    bus = record.call.bus

    def forward(event) -> None:
        if event.kind != "stage_latency":
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                pass  # a stalled viewer loses events; the call does not wait for it

    history = list(bus.history)
    bus.subscribe(forward)
    try:
        for event in history:
            if event.kind != "stage_latency":
                await ws.send_str(_dumps(event.to_dict()))
        ended = asyncio.ensure_future(record.call.wait_end())
        closed = asyncio.ensure_future(_closed(ws))
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, ended, closed},
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await ws.send_str(_dumps(getter.result().to_dict()))
        ended.cancel()
        closed.cancel()
    finally:
        bus.unsubscribe(forward)
        await ws.close()
    return ws


async def _closed(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


def _past_calls(store, status: str | None, limit: int) -> list[dict]:
    if hasattr(store, "list_calls"):
        return store.list_calls(status=status, limit=limit)
    return []


def _stored_call(store, call_id: str) -> dict | None:
    if hasattr(store, "get_call"):
        return store.get_call(call_id)
    return store.call(call_id)


def _server_gauges(center, registry: CollectorRegistry) -> None:
    live = Gauge("switchboard_live_calls", "Calls in progress", registry=registry)
    live.set_function(lambda: len(center.calls))
    refused = Gauge("switchboard_refused_calls", "Calls refused by admission control",
                    registry=registry)
    refused.set_function(lambda: center.refused)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_default)


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__dict__"):
        return vars(value)
    return str(value)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(value), status=status, content_type="application/json")
