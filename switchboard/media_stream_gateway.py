"""Carrier media streams into the call center: each WebSocket stream becomes a call.

The route a carrier's stream connects to (``GET /media-stream``; Twilio:
``<Connect><Stream url="wss://host/media-stream"/></Connect>``). Admission control answers
an upgrade over the limit with 503 and Retry-After, as SIP does. An admitted stream's
:class:`~switchboard.telephony.media_stream.MediaStreamEdge` is the call's caller leg;
the call's barge-in (``BotReplyInterrupted``) sends ``clear`` so the carrier drops the
reply it has buffered. A protocol violation ends the call with ``protocol_error``; a
dropped message is kept in the record as a ``stage_error`` of stage ``media_stream``.

The route is public, like the SIP address, unless ``[carrier] twilio_auth_token`` is set:
then a handshake without a valid ``X-Twilio-Signature`` is refused with 403 before any
call starts. Either way whoever connects gets a call with the bot and hears only that call.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from switchboard.callcenter import CallCenter
from switchboard.pipeline.events import BotReplyInterrupted, Event, StageError
from switchboard.telephony import twilio_signature
from switchboard.telephony.media_stream import MediaStreamEdge, MediaStreamError

log = logging.getLogger(__name__)

PATH = "/media-stream"
#: Largest message accepted: a media message of 20 ms is ~250 bytes; Twilio never sends
#: more than a few kB. Over it, aiohttp closes the socket with 1009.
MAX_MESSAGE = 64 * 1024


class MediaStreamGateway:
    """The media-stream WebSocket route, wired to a call center."""

    def __init__(self, center: CallCenter, start_timeout_s: float = 10.0):
        self.center = center
        self.start_timeout_s = start_timeout_s
        #: Edges of the streams handled so far in this process, newest last (tests).
        self.edges: list[MediaStreamEdge] = []

    def install(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._signed(request):
            log.warning("media stream from %s refused: no valid X-Twilio-Signature",
                        request.remote)
            return web.json_response({"error": "signature required"}, status=403)
        ok, retry_after = self.center.admit()
        if not ok:
            return web.json_response({"error": "busy"}, status=503,
                                     headers={"Retry-After": str(retry_after)})
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        edge = MediaStreamEdge(ws, peer=f"media-stream:{request.remote}")
        self.edges.append(edge)
        del self.edges[:-100]
        try:
            await edge.open(self.start_timeout_s)
        except MediaStreamError as exc:
            log.info("media stream from %s refused: %s", request.remote, exc.reason)
            await ws.close(code=exc.code, message=exc.reason.encode()[:120])
            return ws

        call = self.center.new_call("media_stream")

        def on_error(reason: str) -> None:
            call.end("protocol_error", f"media stream: {reason}")

        def on_warning(kind: str, detail: str) -> None:
            call.publish(StageError(call_id=call.call_id, leg="caller",
                                    t_audio=call.t_audio(), stage="media_stream",
                                    error=f"{kind}: {detail}"))

        def on_event(event: Event) -> None:
            if isinstance(event, BotReplyInterrupted):
                edge.clear()

        edge.on_error = on_error
        edge.on_warning = on_warning
        call.bus.subscribe(on_event)
        reader = asyncio.get_running_loop().create_task(edge.run(), name="media-stream:read")
        try:
            await self.center.run_call(call, edge)
        finally:
            await edge.close(call.end_reason or "ended")
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        return ws

    def _signed(self, request: web.Request) -> bool:
        carrier = self.center.settings.carrier
        if not carrier.twilio_auth_token:
            return True
        # The carrier signs the wss:// URL it was given; aiohttp names the upgrade http://.
        url = carrier.public_url or str(request.url.with_scheme(
            "wss" if request.secure else "ws"))
        if carrier.public_url and request.query_string:
            url += "?" + request.query_string
        return twilio_signature.valid(carrier.twilio_auth_token, url,
                                      request.headers.get("X-Twilio-Signature"))
