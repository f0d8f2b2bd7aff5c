"""SIP calls: the dialog, its offer/answer and its RTP session, as the server sees them.

:class:`IncomingCall` is handed to the server's ``on_invite`` handler, which rings,
answers or rejects it; :class:`OutgoingCall` is what ``SipEndpoint.dial`` returns. Both
end with a BYE (either side), and both carry a :class:`SipEdge` once answered.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sipmessage
from sipua import Dialog, create_ack, create_response
from sipua.transaction import T1, T2
from switchboard.telephony.sip import sdp
from switchboard.telephony.sip.rtp import RtpSession, RtpStats

if TYPE_CHECKING:
    from switchboard.telephony.sip.endpoint import SipEndpoint

logger = logging.getLogger(__name__)

SDP_TYPE = sipmessage.MediaType(mime_type="application/sdp")
#: INFO bodies that carry a key press (Cisco's dtmf-relay, RFC 2976-era application/dtmf).
DTMF_INFO_TYPES = {"application/dtmf-relay", "application/dtmf"}
_INFO_EVENTS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


def info_digit(body: str) -> str | None:
    """The digit of an INFO body ("Signal=5\\r\\nDuration=160" or just "5"), or None."""
    value = body.strip()
    for line in body.splitlines():
        key, _, val = line.partition("=")
        if key.strip().lower() == "signal":
            value = val.strip()
            break
    value = _INFO_EVENTS.get(value, value).upper()
    return value if len(value) == 1 and value in "0123456789*#ABCD" else None


class CallState(enum.Enum):
    """Where a call is in its life."""

    OFFERED = "offered"  # incoming, no answer yet
    CALLING = "calling"  # outgoing, INVITE sent
    RINGING = "ringing"
    ANSWERED = "answered"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ENDED = "ended"


class CallFailed(Exception):
    """An outgoing call got a final error response (or timed out, 408)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class CallDialog(Dialog):
    """sipua's dialog, sending in-dialog requests to the remote target.

    sipua's ``create_request`` uses the remote *address* (the peer's From/To URI) as
    Request-URI; RFC 3261 12.2.1.1 wants the remote target (its Contact), which is where
    a phone actually listens.
    """

    def __init__(self, *, owner: BaseCall, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner

    def create_request(self, method: str) -> sipmessage.Request:
        """A request in this dialog, addressed to the remote target."""
        request = super().create_request(method)
        request.uri = self.remote_uri
        return request

    async def handle_request(self, request: sipmessage.Request) -> None:
        """In-dialog requests go to the call."""
        await self.owner._in_dialog(request)

    def terminate(self) -> None:
        """Stop routing requests to this dialog (idempotent)."""
        self._dialog_layer._dialogs.pop(self._key, None)


class SipEdge:
    """The :class:`~switchboard.telephony.edge.MediaEdge` of one SIP call."""

    def __init__(
        self, session: RtpSession, peer: str, hangup: Callable[[str], Awaitable[None]]
    ) -> None:
        self.peer = peer
        self.on_dtmf: Callable[[str], None] | None = None
        self._session = session
        self._hangup = hangup
        session.on_dtmf = self._dtmf

    def _dtmf(self, digit: str) -> None:
        if self.on_dtmf is not None:
            self.on_dtmf(digit)

    async def receive(self) -> bytes | None:
        """The party's next 20 ms frame; None once the call has ended."""
        return await self._session.receive()

    def send(self, pcm: bytes) -> None:
        """Queue 20 ms toward the party."""
        self._session.send(pcm)

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send digits as RFC 4733 events (if the peer accepted telephone-event)."""
        self._session.send_dtmf(digits, duration_ms)

    async def close(self, reason: str) -> None:
        """Hang up (BYE); idempotent."""
        await self._hangup(reason)

    @property
    def stats(self) -> RtpStats:
        """RTP counters of this call."""
        return self._session.stats

    def media_stats(self) -> dict[str, Any]:
        """How the call's media went (RtpSession.media_stats), for the call record."""
        return self._session.media_stats()

    @property
    def session(self) -> RtpSession:
        """The RTP session (jitter buffer stats, codec)."""
        return self._session


class BaseCall:
    """What incoming and outgoing calls share: dialog, media, hold, hang-up."""

    dialog: CallDialog

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self.state = CallState.OFFERED
        self.session = RtpSession(
            endpoint.media_host,
            jitter_prefetch=endpoint.options.jitter_prefetch_frames,
            jitter_capacity=endpoint.options.jitter_capacity_frames,
            jitter_min=endpoint.options.jitter_min_frames,
            jitter_max=endpoint.options.jitter_max_frames,
            rtcp_interval_s=endpoint.options.rtcp_interval_s,
        )
        self.edge: SipEdge | None = None
        self.negotiated: sdp.Negotiated | None = None
        self.remote_media: sdp.MediaDescription | None = None
        #: True while the peer has us on hold.
        self.held = False
        #: True while we have the peer on hold (:meth:`hold`).
        self.holding = False
        #: Called with True when the peer puts the call on hold, False on resume.
        self.on_hold: Callable[[bool], None] | None = None
        #: Set when the call is over, whoever ended it; ``end_reason`` says why.
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._sdp_id = int(asyncio.get_running_loop().time() * 1000) & 0x7FFFFFFF
        self._sdp_version = 0
        self._ack = asyncio.Event()
        self._pending_2xx_cseq: int | None = None
        self._last_2xx: sipmessage.Response | None = None
        self._ack_task: asyncio.Task[None] | None = None
        self._bye_task: asyncio.Task[sipmessage.Response] | None = None

    @property
    def call_id(self) -> str:
        """The SIP Call-ID."""
        return self.dialog.call_id

    @property
    def peer(self) -> str:
        """The other party's URI."""
        return str(self.dialog.remote_address.uri)

    # -- offer/answer ------------------------------------------------------------------

    def _local_sdp(self, codecs: list[sdp.Codec], direction: str) -> bytes:
        self._sdp_version += 1
        return sdp.build(
            host=self.endpoint.media_host,
            port=self.session.port,
            codecs=codecs,
            direction=direction,
            session_id=self._sdp_id,
            version=self._sdp_version,
        ).encode()

    def _apply_remote(self, media: sdp.MediaDescription, negotiated: sdp.Negotiated) -> None:
        """Point the RTP session at the peer and follow its direction (hold/resume)."""
        self.remote_media, self.negotiated = media, negotiated
        ours = sdp.answer_direction(media.direction)
        held = media.direction in ("sendonly", "inactive") or media.host == "0.0.0.0"
        self.session.configure(
            codec=negotiated.codec,
            telephone_event_pt=negotiated.telephone_event_pt,
            remote=(media.host, media.port),
            remote_rtcp_port=media.rtcp_port,
            send=ours in ("sendrecv", "sendonly") and not held,
            receive=ours in ("sendrecv", "recvonly") and not held,
        )
        if held != self.held:
            self.held = held
            if self.on_hold is not None:
                try:
                    self.on_hold(held)
                except Exception:
                    logger.exception("on_hold callback failed")

    def _make_edge(self) -> SipEdge:
        if self.edge is None:
            self.edge = SipEdge(self.session, self.peer, self.hangup)
        return self.edge

    # -- in-dialog requests -------------------------------------------------------------

    async def _in_dialog(self, request: sipmessage.Request) -> None:
        method = request.method
        if method == "ACK":
            if self._pending_2xx_cseq == request.cseq.sequence:
                self._ack.set()
                await self._on_ack(request)
            return
        if method == "BYE":
            await self.dialog.send_response(self.dialog.create_response(request, 200))
            await self._end("remote hangup")
        elif method == "INVITE":
            await self._reinvite(request)
        elif method == "OPTIONS":
            await self.dialog.send_response(self.endpoint._options_response(request))
        elif method == "INFO":
            await self._info(request)
        else:
            await self.dialog.send_response(self.endpoint._method_not_allowed(request))

    async def _info(self, request: sipmessage.Request) -> None:
        """SIP INFO: DTMF from phones and trunks that send key presses this way."""
        ctype = request.content_type
        if not request.body:
            # An empty INFO is a keep-alive probe.
            await self.dialog.send_response(self.dialog.create_response(request, 200))
            return
        if ctype is None or ctype.mime_type.lower() not in DTMF_INFO_TYPES:
            response = self.dialog.create_response(request, 415)
            response.headers.set("Accept", ", ".join(sorted(DTMF_INFO_TYPES)))
            await self.dialog.send_response(response)
            return
        digit = info_digit(request.body.decode("utf-8", "replace"))
        await self.dialog.send_response(self.dialog.create_response(request, 200 if digit else 400))
        if digit and self.edge is not None:
            self.edge._dtmf(digit)

    async def hold(self) -> None:
        """Put the peer on hold: re-INVITE a=sendonly (we may still send, e.g. music)."""
        await self._reoffer("sendonly")

    async def resume(self) -> None:
        """Take the peer off hold: re-INVITE a=sendrecv."""
        await self._reoffer("sendrecv")

    async def _reoffer(self, direction: str) -> None:
        if self.state != CallState.ANSWERED or self.negotiated is None:
            raise RuntimeError(f"call {self.call_id} is not answered")
        request = self.dialog.create_request("INVITE")
        request.contact = [self.endpoint._contact()]
        request.content_type = SDP_TYPE
        request.body = self._local_sdp(sdp.answer_codecs(self.negotiated), direction)
        response = await self.dialog.send_request(request)
        if not 200 <= response.code < 300:
            # The session stays as it was (RFC 3261 14.1); 491 means both sides re-offered.
            raise CallFailed(response.code, response.phrase)
        try:
            media = sdp.parse(response.body.decode("utf-8", "replace"))
            self._apply_remote(media, sdp.negotiate(media))
        except sdp.SdpError as exc:
            raise CallFailed(488, f"unusable answer: {exc}") from exc
        self.holding = direction != "sendrecv"

    async def _on_ack(self, ack: sipmessage.Request) -> None:
        """Hook for an ACK that carries the answer to an offer we made in a 200."""

    async def _reinvite(self, request: sipmessage.Request) -> None:
        if self._pending_2xx_cseq is not None and not self._ack.is_set():
            # Our previous 2xx is not yet acknowledged (RFC 3261 14.2): try again later.
            response = create_response(request=request, code=500)
            response.headers.set("Retry-After", "1")
            await self.dialog.send_response(response)
            return
        if request.body:
            try:
                media = sdp.parse(request.body.decode("utf-8", "replace"))
                negotiated = sdp.negotiate(media)
            except sdp.NoCommonCodec:
                await self.dialog.send_response(create_response(request=request, code=488))
                return
            except sdp.SdpError:
                await self.dialog.send_response(create_response(request=request, code=400))
                return
            self._apply_remote(media, negotiated)
            body = self._local_sdp(
                sdp.answer_codecs(negotiated), sdp.answer_direction(media.direction)
            )
        else:
            # An offerless re-INVITE: we offer again, the ACK would carry the answer.
            assert self.negotiated is not None
            body = self._local_sdp(sdp.answer_codecs(self.negotiated), "sendrecv")
        response = self.dialog.create_response(request, 200)
        response.contact = [self.endpoint._contact()]
        response.content_type = SDP_TYPE
        response.body = body
        await self._send_2xx(request, response)

    async def _send_2xx(self, request: sipmessage.Request, response: sipmessage.Response) -> None:
        """Send a 2xx to an INVITE; over UDP, repeat it until the ACK (RFC 3261 13.3.1.4)."""
        self._ack.clear()
        self._pending_2xx_cseq = request.cseq.sequence
        self._last_2xx = response
        await self.dialog.send_response(response)
        if request.via[0].transport.upper() == "UDP":
            self._ack_task = asyncio.create_task(self._retransmit_2xx(response))
        else:
            self._ack_task = asyncio.create_task(self._await_ack(64 * T1))

    async def _retransmit_2xx(self, response: sipmessage.Response) -> None:
        interval, waited = T1, 0.0
        while waited < 64 * T1 and not self.ended.is_set():
            try:
                await asyncio.wait_for(self._ack.wait(), interval)
                return
            except TimeoutError:
                waited += interval
            if self._ack.is_set() or self.ended.is_set():
                return
            await self.endpoint.transport.send_message(response)
            interval = min(2 * interval, T2)
        if not self._ack.is_set() and not self.ended.is_set():
            logger.info("no ACK for our 200 on %s: ending the call", self.call_id)
            await self.hangup("no ACK")

    async def _await_ack(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ack.wait(), timeout)
        except TimeoutError:
            if not self.ended.is_set():
                await self.hangup("no ACK")

    async def resend_2xx(self) -> None:
        """A retransmitted INVITE reached us after our 2xx: send the 2xx again."""
        if self._last_2xx is not None and not self._ack.is_set():
            await self.endpoint.transport.send_message(self._last_2xx)

    # -- ending ------------------------------------------------------------------------

    async def hangup(self, reason: str = "hangup") -> None:
        """End the call from our side: BYE if answered; idempotent."""
        if self.ended.is_set():
            return
        answered = self.state == CallState.ANSWERED
        await self._end(reason)
        if answered:
            request = self.dialog.create_request("BYE")
            request.contact = []
            self._bye_task = asyncio.create_task(self.dialog.send_request(request))
            # Its outcome is only logged; read it so a late failure is not an asyncio warning.
            self._bye_task.add_done_callback(lambda t: t.cancelled() or t.exception())
            try:
                # The BYE's transaction may take 32 s to time out; the caller need not wait.
                await asyncio.wait_for(
                    asyncio.shield(self._bye_task), self.endpoint.options.bye_wait_s
                )
            except (TimeoutError, Exception) as exc:
                logger.info("BYE on %s not confirmed: %r", self.call_id, exc)

    async def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        if self.state == CallState.ANSWERED:
            self.state = CallState.ENDED
        self.ended.set()
        await self.session.close()
        self.dialog.terminate()
        self.endpoint._forget(self)


class IncomingCall(BaseCall):
    """An INVITE waiting for the server's decision: :meth:`ring`, :meth:`answer`, :meth:`reject`.

    ``cancelled`` is set if the caller gives up (CANCEL) before the answer; ``ended`` is
    set whenever the call is over.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        invite: sipmessage.Request,
        offer: sdp.MediaDescription | None,
    ) -> None:
        super().__init__(endpoint)
        self.invite = invite
        self.offer = offer
        self.dialog = CallDialog.create_uas(
            dialog_layer=endpoint.dialog_layer, request=invite, owner=self
        )
        #: Set when the caller cancelled before we answered (we replied 487).
        self.cancelled = asyncio.Event()
        self._decided = False

    @property
    def caller(self) -> str:
        """The From URI (who is calling)."""
        return str(self.invite.from_address.uri)

    @property
    def callee(self) -> str:
        """The Request-URI (the number or user dialled)."""
        return str(self.invite.uri)

    @property
    def transport(self) -> str:
        """ "UDP" or "TCP": how the INVITE arrived."""
        return self.invite.via[0].transport.upper()

    @property
    def decided(self) -> bool:
        """True once a final response went out (answer, reject, or 487 on CANCEL)."""
        return self._decided

    def _check_open(self) -> None:
        if self._decided or self.ended.is_set():
            raise RuntimeError(f"call {self.call_id} is already {self.state.value}")

    async def ring(self) -> None:
        """Send 180 Ringing."""
        self._check_open()
        await self.dialog.send_response(self.dialog.create_response(self.invite, 180))
        self.state = CallState.RINGING

    async def answer(self) -> SipEdge:
        """Send 200 with our SDP answer and start media; returns the call's edge."""
        self._check_open()
        self._decided = True
        await self.session.open()
        if self.offer is not None:
            negotiated = sdp.negotiate(self.offer)  # checked before the handler ran
            self._apply_remote(self.offer, negotiated)
            body = self._local_sdp(
                sdp.answer_codecs(negotiated), sdp.answer_direction(self.offer.direction)
            )
        else:
            body = self._local_sdp(sdp.offer_codecs(), "sendrecv")  # answer comes in the ACK
        response = self.dialog.create_response(self.invite, 200)
        response.contact = [self.endpoint._contact()]
        response.content_type = SDP_TYPE
        response.body = body
        self.state = CallState.ANSWERED
        edge = self._make_edge()
        try:
            await self._send_2xx(self.invite, response)
        except OSError as exc:
            # The caller's TCP connection went away before our 200: nothing to answer.
            await self._end(f"could not answer: {exc}")
            raise
        return edge

    async def _on_ack(self, ack: sipmessage.Request) -> None:
        if self.offer is None and self.negotiated is None and ack.body:
            try:
                media = sdp.parse(ack.body.decode("utf-8", "replace"))
                self._apply_remote(media, sdp.negotiate(media, ("PCMU", "PCMA")))
            except sdp.SdpError as exc:
                logger.info("unusable SDP answer in ACK on %s: %s", self.call_id, exc)
                await self.hangup("bad SDP in ACK")

    async def reject(
        self,
        code: int,
        reason: str | None = None,
        retry_after: int | None = None,
        www_authenticate: object | None = None,
    ) -> None:
        """Send a final error response (486 busy, 503 with Retry-After when full, 401
        with a digest challenge ``www_authenticate``, ...)."""
        if not 300 <= code < 700:
            raise ValueError("reject needs a 3xx-6xx code")
        self._check_open()
        self._decided = True
        response = create_response(request=self.invite, code=code, phrase=reason)
        response.to_address = self.dialog.local_address  # our tag, as for the 180
        if retry_after is not None:
            response.headers.set("Retry-After", str(int(retry_after)))
        if www_authenticate is not None:
            response.www_authenticate = www_authenticate
        await self.dialog.send_response(response)
        self.state = CallState.REJECTED
        await self._end(f"rejected {code}")

    async def _cancel(self, cancel: sipmessage.Request) -> None:
        """The caller's CANCEL: 200 to it, 487 to the INVITE (RFC 3261 9.2)."""
        await self.endpoint.transactions.send_response(create_response(request=cancel, code=200))
        if self._decided:
            return  # too late: the final response is out, the CANCEL changes nothing
        self._decided = True
        response = create_response(request=self.invite, code=487)
        response.to_address = self.dialog.local_address
        await self.dialog.send_response(response)
        self.state = CallState.CANCELLED
        self.cancelled.set()
        await self._end("cancelled")


class OutgoingCall(BaseCall):
    """A call we placed: ``ringing`` then :meth:`wait_answered` (the edge) or CallFailed."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        local: sipmessage.Address,
        remote: sipmessage.Address,
        target: sipmessage.URI,
    ) -> None:
        super().__init__(endpoint)
        self.state = CallState.CALLING
        self.dialog = CallDialog.create_uac(
            dialog_layer=endpoint.dialog_layer,
            local_address=local,
            remote_address=remote,
            owner=self,
        )
        self.dialog.remote_uri = target
        #: Set on the first 18x.
        self.ringing = asyncio.Event()
        self.final_code: int | None = None
        self._answered: asyncio.Future[SipEdge] = asyncio.get_running_loop().create_future()
        self._invite: sipmessage.Request | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, extra_headers: list[tuple[str, str]] | None = None) -> None:
        """Open media and send the INVITE (the outcome arrives in the background)."""
        await self.session.open()
        request = self.dialog.create_request("INVITE")
        request.contact = [self.endpoint._contact()]
        request.content_type = SDP_TYPE
        request.body = self._local_sdp(sdp.offer_codecs(), "sendrecv")
        for key, value in extra_headers or []:
            request.headers.add(key, value)
        self._invite = request
        self._task = asyncio.create_task(self._run(request))

    async def _run(self, request: sipmessage.Request) -> None:
        try:
            response = await self.dialog.send_request(request)
        except Exception as exc:
            logger.info("INVITE to %s failed: %r", self.peer, exc)
            response = create_response(request=request, code=503)
        self.final_code = response.code
        if 200 <= response.code < 300 and self.state == CallState.CANCELLED:
            # Our CANCEL crossed the 200: the call exists, so end it with a BYE.
            self.state = CallState.ANSWERED
            await self.hangup("cancelled")
            self.state = CallState.CANCELLED
            self._fail(487, "Request Terminated")
            return
        if 200 <= response.code < 300:
            try:
                media = sdp.parse(response.body.decode("utf-8", "replace"))
                negotiated = sdp.negotiate(media)
            except sdp.SdpError as exc:
                self.state = CallState.ANSWERED  # so that hangup sends the BYE
                await self.hangup("no usable SDP answer")
                self.state = CallState.FAILED
                self._fail(488, f"unusable answer: {exc}")
                return
            self._apply_remote(media, negotiated)
            self.state = CallState.ANSWERED
            if not self._answered.done():
                self._answered.set_result(self._make_edge())
            return
        if self.state != CallState.CANCELLED:
            self.state = CallState.FAILED
        self._fail(response.code, response.phrase)
        await self._end(f"failed {response.code}")

    def _fail(self, code: int, reason: str) -> None:
        if not self._answered.done():
            self._answered.set_exception(CallFailed(code, reason))
            self._answered.exception()  # retrieved: nobody may be waiting

    def _observe(self, response: sipmessage.Response, matched: bool) -> None:
        """Provisional responses and retransmitted 2xx for our INVITE."""
        if response.cseq.method != "INVITE":
            return
        if 180 <= response.code < 190 and not self.ringing.is_set():
            if self.state == CallState.CALLING:
                self.state = CallState.RINGING
            self.ringing.set()
        elif 200 <= response.code < 300 and not matched and self._invite is not None:
            # The peer did not get our ACK and repeats its 200: acknowledge again.
            ack = create_ack(request=self._invite, response=response)
            asyncio.create_task(self.endpoint.transport.send_message(ack))

    async def wait_answered(self, timeout: float | None = None) -> SipEdge:
        """The edge once answered; CallFailed(code) if rejected, cancelled or timed out."""
        return await asyncio.wait_for(asyncio.shield(self._answered), timeout)

    async def cancel(self) -> None:
        """CANCEL while calling or ringing; hang up if already answered."""
        if self.state == CallState.ANSWERED:
            await self.hangup("cancelled")
            return
        if self._invite is None or self.state not in (CallState.CALLING, CallState.RINGING):
            return
        self.state = CallState.CANCELLED
        invite = self._invite
        cancel = sipmessage.Request("CANCEL", invite.uri)
        cancel.via = [invite.via[0]]  # same branch: it names the INVITE transaction
        cancel.to_address = invite.to_address
        cancel.from_address = invite.from_address
        cancel.call_id = invite.call_id
        cancel.cseq = sipmessage.CSeq(sequence=invite.cseq.sequence, method="CANCEL")
        cancel.max_forwards = 70
        cancel.route = invite.route
        response = await self.endpoint.transactions.send_request(cancel)
        logger.info("CANCEL on %s: %s", self.call_id, response.code)
