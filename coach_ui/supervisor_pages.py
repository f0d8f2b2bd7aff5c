"""The supervisors' side of the HTTP app: the board of live calls and listen / whisper /
barge from the browser.

Routes (a supervisor's session only: no session gets 401, or the log-in page for
``/board``; an agent's session gets 403 everywhere here):

- ``GET /board`` — the board page;
- ``GET /board/ws`` — the board's WebSocket: ``rows`` messages (the calls whose row
  changed since the last one, at most one per call per ``[supervision]
  board_interval_s``; the calls that ended under ``removed``);
- ``POST /board/supervise`` (JSON ``{call_id, mode, sdp}``) — join a call from the page's
  WebRTC offer in a mode (listen, whisper, barge); returns the SDP answer;
- ``POST /board/mode`` (JSON ``{call_id, mode}``) — switch modes: the routing changes,
  the connection stays;
- ``POST /board/leave`` (JSON ``{call_id}``) — leave the call.

A supervisor's session may also read every call under ``/api`` (coach_ui/app.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import WSMsgType, web
from switchboard.coach_ui.agent_pages import _json_body, _same_origin, session_user
from switchboard.telephony import webrtc
from switchboard.telephony.webrtc import OfferError

from switchboard.board import Board
from switchboard.supervision import Supervision, SupervisionError, parse_mode
from switchboard.users import Role, User

log = logging.getLogger(__name__)

SUPERVISION = web.AppKey("supervision", Supervision)
BOARD = web.AppKey("board", Board)
#: Board messages a page may fall behind by before it misses updates (it gets whole rows,
#: so the next one puts it right).
BACKLOG = 20


def install(app: web.Application, center, page: Callable[[str], web.Response],
            supervision: Supervision | None = None) -> Supervision:
    """Add the supervisors' routes over ``center``; returns its :class:`Supervision`
    (the SIP feature code shares it)."""
    supervision = supervision or Supervision.of(center)
    app[SUPERVISION] = supervision
    app[BOARD] = Board(center, center.settings)

    async def board_page(request: web.Request) -> web.Response:
        user = session_user(request)
        if user is None:
            raise web.HTTPFound("/login")
        if user.role is not Role.SUPERVISOR:
            raise web.HTTPForbidden(text="the board is for supervisors")
        return page("board.html")

    app.router.add_get("/board", board_page)
    app.router.add_get("/board/ws", board_ws)
    app.router.add_post("/board/supervise", supervise)
    app.router.add_post("/board/mode", change_mode)
    app.router.add_post("/board/leave", leave)
    return supervision


def is_supervisor(request: web.Request) -> bool:
    user = session_user(request)
    return user is not None and user.role is Role.SUPERVISOR


def _supervisor(request: web.Request) -> User:
    """The session's supervisor, or the HTTP error that says why not."""
    user = session_user(request)
    if user is None:
        raise web.HTTPUnauthorized(text="log in first")
    if user.role is not Role.SUPERVISOR:
        raise web.HTTPForbidden(text="supervisors only")
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site request refused")
    return user


async def board_ws(request: web.Request) -> web.WebSocketResponse:
    user = _supervisor(request)
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    board = request.app[BOARD]
    interval = request.app[BOARD].settings.supervision.board_interval_s
    sent: dict[str, dict] = {}
    await ws.send_str(json.dumps({"kind": "hello", "supervisor": user.name}))

    async def reader() -> None:
        async for msg in ws:  # the page sends nothing; this notices it closing
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    closed = asyncio.ensure_future(reader())
    try:
        # Bounded: a working day of ticks.
        for _ in range(int(12 * 3600 / interval)):
            update = board.changes(sent)
            if update is not None:
                await ws.send_str(json.dumps(update, default=str))
            done, _ = await asyncio.wait({closed}, timeout=interval)
            if done or ws.closed:
                break
    except ConnectionResetError:
        pass  # the page went away mid-send
    finally:
        closed.cancel()
        await ws.close()
    return ws


async def _call_and_mode(request: web.Request, need_mode: bool) -> tuple[User, dict]:
    user = _supervisor(request)
    body = await _json_body(request)
    if not isinstance(body.get("call_id"), str):
        raise web.HTTPBadRequest(text="call_id missing")
    if need_mode:
        try:
            body["mode"] = parse_mode(body.get("mode"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    return user, body


async def supervise(request: web.Request) -> web.Response:
    user, body = await _call_and_mode(request, need_mode=True)
    supervision = request.app[SUPERVISION]
    call_id = body["call_id"]
    try:
        supervision.call(call_id)
    except SupervisionError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    try:
        edge, local = await webrtc.answer(body.get("sdp"), "offer",
                                          peer=f"webrtc:supervisor:{user.name}")
    except OfferError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    try:
        leg = await supervision.join(call_id, user.name, edge, body["mode"])
    except SupervisionError as exc:  # the call ended while we built the answer
        await edge.close("call ended")
        return web.json_response({"error": str(exc)}, status=404)
    connect_s = request.app[BOARD].settings.supervision.connect_s
    asyncio.get_running_loop().create_task(
        _drop_unconnected(supervision, call_id, leg, edge, connect_s),
        name=f"supervise:{user.name}")
    return web.json_response({"sdp": local.sdp, "type": local.type, "call_id": call_id,
                              "leg": leg, "mode": body["mode"].value})


async def _drop_unconnected(supervision: Supervision, call_id: str, leg: str,
                            edge: webrtc.WebRtcEdge, connect_s: float) -> None:
    """A page that answered but never connected must not stay a silent leg."""
    if await edge.wait_connected(connect_s):
        return
    log.info("supervisor leg %s of call %s never connected", leg, call_id)
    try:
        call = supervision.call(call_id)
    except SupervisionError:
        return
    if call.legs.get(leg) is not None and call.legs[leg].edge is edge:
        await call.remove_leg(leg, "not connected")


async def change_mode(request: web.Request) -> web.Response:
    user, body = await _call_and_mode(request, need_mode=True)
    try:
        request.app[SUPERVISION].set_mode(body["call_id"], user.name, body["mode"])
    except SupervisionError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response({"call_id": body["call_id"], "mode": body["mode"].value})


async def leave(request: web.Request) -> web.Response:
    user, body = await _call_and_mode(request, need_mode=False)
    try:
        await request.app[SUPERVISION].leave(body["call_id"], user.name)
    except SupervisionError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.json_response({"call_id": body["call_id"], "left": True})
