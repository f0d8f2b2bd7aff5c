"""The agents' side of the HTTP app: log-in, the agent page, ringing, answering.

Routes (all but the log-in page need a session; see coach_ui/sessions.py):

- ``GET /login``, ``POST /login`` (JSON ``{name, password}``), ``POST /logout``;
- ``GET /agent`` — the agent page (to ``/login`` without a session);
- ``GET /agent/ws`` — the page's WebSocket: while open, the agent can be rung here;
  the server sends ``ringing`` (with the call's context), ``ring_ended``, ``call_ended``;
  the page sends ``{"kind": "decline", "call_id"}``;
- ``POST /agent/answer`` (JSON ``{call_id, sdp}``) — answer a ringing call with the
  page's WebRTC offer; returns the SDP answer;
- the page also sends ``{"kind": "mute_prompts", "on": true|false}``: the coach stops (or
  resumes) whispering spoken prompts on the agent's call (they still show on screen);
  the server answers ``prompts_muted`` with what it applied;
- ``GET /record/{call_id}`` — the after-call record page, and ``GET /record/{call_id}/json``
  its data (the stored call, its events, the summary): for supervisors, and for the agent
  who took that call; nobody else (:func:`may_read_record`).

A session reads a call only while its agent is rung for it or on it
(:meth:`~switchboard.browser_agents.AgentDesk.may_read`): the agent page follows its call
through ``/api/calls/{id}/events`` with its cookie, and nothing else under ``/api``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from switchboard.coach_ui.sessions import COOKIE, Sessions
from switchboard.telephony.webrtc import MAX_OFFER, OfferError

from switchboard.browser_agents import AgentDesk, NotRinging
from switchboard.users import Role, User, UserStore

log = logging.getLogger(__name__)

USERS = web.AppKey("users", UserStore)
SESSIONS = web.AppKey("sessions", Sessions)
DESK = web.AppKey("desk", AgentDesk)
#: Kinds left out of a record's events: per-step timings, hundreds per call.
RECORD_SKIPS = ("stage_latency",)


def install(app: web.Application, users: UserStore, desk: AgentDesk,
            page: Callable[[str], web.Response]) -> None:
    """Add the agents' routes; ``page(name)`` renders a static page with its headers."""
    app[USERS] = users
    app[SESSIONS] = Sessions()
    app[DESK] = desk

    async def login_page(request: web.Request) -> web.Response:
        return page("login.html")

    async def agent_page(request: web.Request) -> web.Response:
        if session_user(request) is None:
            raise web.HTTPFound("/login")
        return page("agent.html")

    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/agent", agent_page)
    app.router.add_get("/agent/ws", agent_ws)
    app.router.add_post("/agent/answer", answer)

    async def record_page(request: web.Request) -> web.Response:
        user = session_user(request)
        if user is None:
            raise web.HTTPFound("/login")
        if await _readable_record(request, user) is None:
            raise web.HTTPForbidden(text="not a call you may read")
        return page("record.html")

    app.router.add_get("/record/{call_id}", record_page)
    app.router.add_get("/record/{call_id}/json", record_json)


def session_user(request: web.Request) -> User | None:
    sessions = request.app.get(SESSIONS)
    return sessions.user(request.cookies.get(COOKIE)) if sessions is not None else None


def may_read_call(request: web.Request, call_id: str) -> bool:
    """Whether the request's session may read call ``call_id`` (its agent's page)."""
    user = session_user(request)
    desk = request.app.get(DESK)
    return user is not None and desk is not None and desk.may_read(user.name, call_id)


def _same_origin(request: web.Request) -> bool:
    # A page of another site must not drive an agent's session (cross-site WebSocket or
    # POST): SameSite=Strict already keeps the cookie off, this refuses it outright.
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def _json_body(request: web.Request) -> dict:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send JSON")
    if (request.content_length or 0) > MAX_OFFER:
        raise web.HTTPRequestEntityTooLarge(MAX_OFFER, request.content_length or 0)
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def login(request: web.Request) -> web.Response:
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site log-in refused")
    body = await _json_body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or len(password) > 1024:
        return web.json_response({"error": "wrong name or password"}, status=401)
    user = await asyncio.to_thread(request.app[USERS].verify, name, password)
    if user is None:
        return web.json_response({"error": "wrong name or password"}, status=401)
    token = request.app[SESSIONS].create(user)
    response = web.json_response({"name": user.name, "role": str(user.role)})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=request.secure, max_age=int(request.app[SESSIONS].ttl_s))
    return response


async def logout(request: web.Request) -> web.Response:
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site log-out refused")
    request.app[SESSIONS].drop(request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def agent_ws(request: web.Request) -> web.WebSocketResponse:
    user = session_user(request)
    if user is None:
        raise web.HTTPUnauthorized(text="log in first")
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    desk = request.app[DESK]
    queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=100)

    def send(message: dict) -> None:
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("agent page of %s is not reading; message dropped", user.name)

    async def writer() -> None:
        for _ in range(1_000_000):  # bounded: a page's messages over a working day
            await ws.send_str(json.dumps(await queue.get(), default=str))

    send({"kind": "hello", "agent": user.name, "role": str(user.role)})
    desk.join(user.name, send)
    task = asyncio.get_running_loop().create_task(writer())
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            try:
                body = json.loads(msg.data)
            except ValueError:
                continue  # the page sends only small JSON; anything else is ignored
            if isinstance(body, dict) and body.get("kind") == "decline":
                desk.decline(user.name, str(body.get("call_id", "")))
            elif isinstance(body, dict) and body.get("kind") == "mute_prompts":
                on = body.get("on") is True
                send({"kind": "prompts_muted", "on": on,
                      "applied": _mute_prompts(request, user.name, on)})
    finally:
        desk.leave(user.name, send)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return ws


async def answer(request: web.Request) -> web.Response:
    user = session_user(request)
    if user is None:
        return web.json_response({"error": "log in first"}, status=401)
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site answer refused")
    body = await _json_body(request)
    call_id = body.get("call_id")
    if not isinstance(call_id, str):
        return web.json_response({"error": "call_id missing"}, status=400)
    try:
        local = await request.app[DESK].answer(user.name, call_id, body.get("sdp"))
    except NotRinging:
        return web.json_response({"error": "that call is not ringing for you"}, status=409)
    except OfferError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"sdp": local.sdp, "type": local.type, "call_id": call_id})


def _mute_prompts(request: web.Request, agent: str, on: bool) -> list[str]:
    """Mute (or unmute) the coach's spoken prompts on the calls ``agent`` is on; the ids of
    the calls whose coach took it."""
    from switchboard.coach_ui.app import CENTER

    center, desk = request.app.get(CENTER), request.app[DESK]
    applied = []
    for call_id, who in list(desk.assigned.items()):
        record = center.calls.get(call_id) if center is not None and who == agent else None
        coaching = getattr(record.call, "coaching", None) if record is not None else None
        if coaching is not None:
            coaching.mute(on)
            applied.append(call_id)
    return applied


def may_read_record(user: User, record: dict | None) -> bool:
    """Supervisors read every call's record; an agent only the calls they took."""
    if record is None:
        return False
    if user.role == Role.SUPERVISOR:
        return True
    summary = record.get("summary") or {}
    if summary.get("agent") == user.name:
        return True
    return any(h.get("agent") == user.name and h.get("outcome") == "answered"
               for h in record.get("handoffs") or [])


async def _readable_record(request: web.Request, user: User) -> dict | None:
    """The stored record of the request's call if ``user`` may read it, else None."""
    from switchboard.coach_ui.app import STORE

    store = request.app.get(STORE)
    call_id = request.match_info["call_id"]
    if store is None or not hasattr(store, "get_call") or len(call_id) > 64:
        return None
    record = await asyncio.to_thread(store.get_call, call_id)
    if record is not None and record.get("status") == "live":
        # The live call's record has no summary yet: its agent is the one on it now.
        desk = request.app.get(DESK)
        if user.role == Role.SUPERVISOR or (desk is not None
                                            and desk.may_read(user.name, call_id)):
            return record
        return None
    return record if may_read_record(user, record) else None


async def record_json(request: web.Request) -> web.Response:
    """The after-call record: the stored call (transcript of both sides, legs, handoffs,
    summary) and its events."""
    from switchboard.coach_ui.app import STORE

    user = session_user(request)
    if user is None:
        return web.json_response({"error": "log in first"}, status=401)
    record = await _readable_record(request, user)
    if record is None:
        return web.json_response({"error": "not a call you may read"}, status=403)
    store = request.app[STORE]
    events = await asyncio.to_thread(store.events, record["call_id"])
    record["events"] = [e for e in events if e.get("kind") not in RECORD_SKIPS]
    return web.Response(text=json.dumps(record, default=str), content_type="application/json",
                        headers={"Cache-Control": "no-store"})
