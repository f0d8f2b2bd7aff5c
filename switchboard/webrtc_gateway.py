"""WebRTC into the call center: a page's offer becomes a call once its connection is up.

``POST /webrtc/offer`` with ``{"sdp": …, "type": "offer"}`` answers ``{"sdp", "type",
"call_id"}`` (400 with the reason for an offer we cannot answer, 503 with Retry-After over
the admission limit). The call is admitted at the offer and runs from the moment ICE and
DTLS connect, so the caller hears the whole greeting; a connection that never comes up
within ``ice_timeout_s`` is recorded as a failed call (``ice_failed``).

The route is public: anyone may call the bot. A caller gets only their own call: its
audio on their peer connection, and its transcript (what the bot heard) on that
connection's ``events`` data channel, which nobody else can open.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from switchboard.callcenter import CallCenter
from switchboard.pipeline.events import (
    BotReply,
    CallStateChanged,
    Event,
    TranscriptFinal,
    TranscriptPartial,
)
from switchboard.telephony import webrtc
from switchboard.telephony.call import Call

log = logging.getLogger(__name__)

PATH = "/webrtc/offer"


class WebRtcGateway:
    """The offer/answer route, wired to a call center."""

    def __init__(self, center: CallCenter, ice_timeout_s: float = 15.0,
                 media_timeout_s: float = 10.0):
        self.center = center
        self.ice_timeout_s = ice_timeout_s
        self.media_timeout_s = media_timeout_s
        #: Edges answered in this process, newest last (tests and the benchmark).
        self.edges: list[webrtc.WebRtcEdge] = []
        self._tasks: set[asyncio.Task] = set()

    def install(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.offer)

    async def offer(self, request: web.Request) -> web.Response:
        ok, retry_after = self.center.admit()
        if not ok:
            return web.json_response({"error": "busy, try again later"}, status=503,
                                     headers={"Retry-After": str(retry_after)})
        if (request.content_length or 0) > webrtc.MAX_OFFER:
            return web.json_response({"error": "offer too large"}, status=413)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "expected {sdp, type}"}, status=400)
        try:
            edge, local = await webrtc.answer(body.get("sdp"), body.get("type", "offer"),
                                              peer=f"webrtc:{request.remote}",
                                              media_timeout_s=self.media_timeout_s)
        except webrtc.OfferError as exc:
            log.info("offer from %s refused: %s", request.remote, exc)
            return web.json_response({"error": str(exc)}, status=400)
        call = self.center.new_call("webrtc")
        self.edges.append(edge)
        del self.edges[:-100]
        task = asyncio.get_running_loop().create_task(self._run(call, edge),
                                                      name=f"call:{call.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"sdp": local.sdp, "type": local.type,
                                  "call_id": call.call_id})

    async def _run(self, call: Call, edge: webrtc.WebRtcEdge) -> None:
        try:
            connected = await edge.wait_connected(self.ice_timeout_s)
        except asyncio.CancelledError:
            self.center.calls.pop(call.call_id, None)
            await edge.close("shutdown")
            raise
        if not connected:
            self._never_connected(call, edge)
            await edge.close("ice_failed")
            return

        def forward(event: Event) -> None:
            message = _for_caller(event)
            if message is not None:
                edge.notify(message)

        call.bus.subscribe(forward)
        edge.notify({"kind": "call", "call_id": call.call_id})
        await self.center.run_call(call, edge)

    def _never_connected(self, call: Call, edge: webrtc.WebRtcEdge) -> None:
        """The record of a call whose connection never came up."""
        self.center.calls.pop(call.call_id, None)
        store = self.center.store
        reason = edge.ended or f"not connected within {self.ice_timeout_s:.0f} s"
        log.info("webrtc call %s: ICE/DTLS did not connect (%s)", call.call_id, reason)
        if store is not None:
            store.begin(call.call_id, edge.peer, channel="webrtc", caller=edge.peer)
            store.end(call.call_id, "failed", reason="ice_failed",
                      error=f"the connection never came up: {reason}")

    async def stop(self) -> None:
        """Close connections still waiting for ICE (live calls end with the center)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)


def _for_caller(event: Event) -> dict | None:
    """What the caller's page is told: what the bot heard from them, what it said, the
    call's state. Nothing of the analysis (anger, intent) meant for agents."""
    if isinstance(event, (TranscriptFinal, TranscriptPartial)) and event.leg == "caller":
        return {"kind": event.kind, "text": event.text, "t": round(event.t_audio, 2)}
    if isinstance(event, BotReply):
        return {"kind": "bot_reply", "text": event.text}
    if isinstance(event, CallStateChanged):
        return {"kind": "call_state", "state": str(event.state)}
    return None
