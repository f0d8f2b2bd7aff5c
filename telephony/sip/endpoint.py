"""The SIP endpoint: one listening UA for callers, agents' phones and our dial-outs.

It is sipua's transport, transaction and dialog layers (with our fixes, see
``transport.py`` and ``transaction.py``) plus the UA core: INVITE to the server's
``on_invite`` handler, CANCEL, OPTIONS, REGISTER to the :class:`Registrar`, 405/501 for
the rest, and ``dial`` for outbound calls to registered agents or SIP URIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping

import sipmessage
from sipua import DialogLayer, TransportAddress, create_response
from sipua.transaction import get_server_transaction_key
from sipua.transport import UdpTransportChannel
from sipua.utils import create_contact
from switchboard.telephony.sip import sdp
from switchboard.telephony.sip.call import (
    BaseCall,
    CallFailed,
    CallState,
    IncomingCall,
    OutgoingCall,
    SipEdge,
)
from switchboard.telephony.sip.digest import CredentialLookup
from switchboard.telephony.sip.registrar import Registrar
from switchboard.telephony.sip.transaction import SipTransactionLayer
from switchboard.telephony.sip.transport import SipTransportLayer

from switchboard.config import SipOptions

logger = logging.getLogger(__name__)

__all__ = ["CallFailed", "IncomingCall", "OutgoingCall", "SipEdge", "SipEndpoint"]

InviteHandler = Callable[[IncomingCall], Awaitable[None]]

#: Tries at finding one port free for both UDP and TCP (port 0).
ATTEMPTS_FOR_A_FREE_PORT = 20
ALLOWED = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"]
#: Methods of SIP extensions we know and do not do: 405 with Allow, not 501.
KNOWN_METHODS = {"SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "UPDATE", "PRACK"}


class SipEndpoint:
    """A SIP user agent listening on ``host:port`` over UDP and/or TCP.

    ``on_invite`` is awaited for every new incoming call and must ring, answer or reject
    it before returning (a call still undecided then gets 480). ``credentials`` (user to
    HA1, or a lookup) enables REGISTER; without it REGISTER gets 405.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5060,
        transports: tuple[str, ...] = ("udp", "tcp"),
        *,
        on_invite: InviteHandler | None = None,
        credentials: Mapping[str, str] | CredentialLookup | None = None,
        options: SipOptions | None = None,
        media_host: str | None = None,
    ) -> None:
        self.options = options or SipOptions()
        self.host = host
        self.port = port
        self.transports = tuple(t.lower() for t in transports)
        self.media_host = media_host or host
        self.on_invite = on_invite
        self.transport = SipTransportLayer()
        self.transactions = SipTransactionLayer(self.transport)
        self.dialog_layer = DialogLayer(self.transactions)
        self.dialog_layer.request_handler = self._handle_request
        self.transactions.response_observer = self._observe_response
        self.registrar: Registrar | None = None
        if credentials is not None:
            self.registrar = Registrar(
                self.options.realm,
                credentials,
                nonce_ttl_s=self.options.nonce_ttl_s,
                default_expires=self.options.default_expires_s,
                min_expires=self.options.min_expires_s,
                max_expires=self.options.max_expires_s,
            )
        self._calls: dict[str, BaseCall] = {}
        self._invites: dict[tuple[str, str, int], IncomingCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False

    @property
    def calls(self) -> list[BaseCall]:
        """Live calls, incoming and outgoing."""
        return list(self._calls.values())

    @property
    def allowed(self) -> list[str]:
        """Methods we answer (for Allow headers)."""
        return ALLOWED + (["REGISTER"] if self.registrar else [])

    # -- life --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on every configured transport (port 0: one free port for all)."""
        if self.port == 0 and {"udp", "tcp"} <= set(self.transports):
            await self._listen_on_a_free_port()
            self._running = True
            logger.info("SIP endpoint on %s:%d (%s)", self.host, self.port,
                        ",".join(self.transports))
            return
        if "udp" in self.transports:
            await self.transport.listen(TransportAddress("udp", self.host, self.port))
            if self.port == 0:
                self.port = (
                    next(
                        c.via_port
                        for c in self.transport._channels
                        if isinstance(c, UdpTransportChannel)
                    )
                    or 0
                )
        if "tcp" in self.transports:
            await self.transport.listen(TransportAddress("tcp", self.host, self.port))
            if self.port == 0:
                server = next(iter(self.transport._tcp_servers))
                self.port = server.sockets[0].getsockname()[1]
        self._running = True
        logger.info("SIP endpoint on %s:%d (%s)", self.host, self.port, ",".join(self.transports))

    async def _listen_on_a_free_port(self) -> None:
        """TCP on a port the system picks, then UDP on the same one. The system's free
        TCP port can be some client's UDP port (and the other way round): then try again
        (bounded), rather than fail the start."""
        servers = self.transport._tcp_servers
        for _ in range(ATTEMPTS_FOR_A_FREE_PORT):
            before = set(servers)
            await self.transport.listen(TransportAddress("tcp", self.host, 0))
            server = next(iter(set(servers) - before))
            port = server.sockets[0].getsockname()[1]
            try:
                await self.transport.listen(TransportAddress("udp", self.host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                servers.discard(server)
                server.close()
                await server.wait_closed()
                continue
            self.port = port
            return
        raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")

    async def stop(self) -> None:
        """BYE every answered call, CANCEL/refuse the rest, then close the sockets."""
        self._running = False
        for call in list(self._calls.values()):
            with contextlib.suppress(Exception):
                if isinstance(call, IncomingCall) and not call.decided:
                    await call.reject(503, "Service Unavailable")
                elif isinstance(call, OutgoingCall) and call.state in (
                    CallState.CALLING,
                    CallState.RINGING,
                ):
                    await asyncio.wait_for(call.cancel(), self.options.bye_wait_s)
                else:
                    await call.hangup("endpoint stopping")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, call: BaseCall) -> None:
        self._calls.pop(call.call_id, None)
        if isinstance(call, IncomingCall):
            # Keep the INVITE key a little while: a late retransmission is not a new call.
            key = _invite_key(call.invite)
            loop = asyncio.get_running_loop()
            loop.call_later(32, self._invites.pop, key, None)

    # -- outbound ----------------------------------------------------------------------

    async def dial(
        self,
        target: str,
        *,
        transport: str | None = None,
        caller: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> OutgoingCall:
        """Call a registered user ("agent1") or a SIP URI; returns once the INVITE is out.

        A user with no live registration raises :class:`CallFailed` (404 or 480).
        """
        if not self._running:
            raise RuntimeError("endpoint not started")
        if target.startswith(("sip:", "sips:")):
            uri = sipmessage.URI.parse(target)
            to_uri = uri
        else:
            if self.registrar is None:
                raise CallFailed(404, "no registrar")
            contacts = self.registrar.lookup(target)
            if not contacts:
                raise CallFailed(480, f"{target} is not registered")
            uri = contacts[0]
            to_uri = sipmessage.URI(scheme="sip", user=target, host=self.host)
        if transport is not None:
            uri = _with_transport(uri, transport)
        user = caller or self.options.user
        local = sipmessage.Address(
            uri=sipmessage.URI(scheme="sip", user=user, host=self.host, port=self.port)
        )
        call = OutgoingCall(self, local=local, remote=sipmessage.Address(uri=to_uri), target=uri)
        self._calls[call.call_id] = call
        try:
            await call.start(headers)
        except Exception:
            await call._end("could not start")
            raise
        return call

    def _observe_response(self, response: sipmessage.Response, matched: bool) -> None:
        try:
            call = self._calls.get(response.call_id)
        except KeyError:
            return
        if isinstance(call, OutgoingCall):
            call._observe(response, matched)

    # -- inbound -----------------------------------------------------------------------

    async def _handle_request(self, request: sipmessage.Request) -> None:
        """Requests outside any dialog (the dialog layer routes the rest to calls)."""
        method = request.method
        if method == "ACK":
            return  # for a dialog that is gone
        if method == "INVITE":
            await self._on_invite(request)
        elif method == "CANCEL":
            await self._on_cancel(request)
        elif method == "OPTIONS":
            await self.transactions.send_response(self._options_response(request))
        elif method == "REGISTER" and self.registrar is not None:
            await self.transactions.send_response(self.registrar.handle(request))
        elif method in ("BYE", "INFO"):
            await self._reply(request, 481)  # for a dialog we do not have
        elif method in KNOWN_METHODS or method == "REGISTER":
            await self.transactions.send_response(self._method_not_allowed(request))
        else:
            await self._reply(request, 501)

    async def _reply(
        self, request: sipmessage.Request, code: int, phrase: str | None = None
    ) -> None:
        await self.transactions.send_response(
            create_response(request=request, code=code, phrase=phrase)
        )

    def _options_response(self, request: sipmessage.Request) -> sipmessage.Response:
        response = create_response(request=request, code=200)
        response.headers.set("Allow", ", ".join(self.allowed))
        response.headers.set("Accept", "application/sdp")
        response.headers.set("Supported", "")
        return response

    def _method_not_allowed(self, request: sipmessage.Request) -> sipmessage.Response:
        response = create_response(request=request, code=405)
        response.headers.set("Allow", ", ".join(self.allowed))
        return response

    def _contact(self) -> sipmessage.Address:
        # Host "any" is filled in by sipua's transport with the channel's address.
        return create_contact()

    async def _on_invite(self, request: sipmessage.Request) -> None:
        if request.to_address.parameters.get("tag"):
            await self._reply(request, 481)  # a re-INVITE for a dialog we do not have
            return
        key = _invite_key(request)
        known = self._invites.get(key)
        if known is not None:
            # A retransmission that outlived its transaction (after our 2xx): not a new call.
            self.transactions._server_transactions.pop(get_server_transaction_key(request), None)
            await known.resend_2xx()
            return
        if not self._running:
            response = create_response(request=request, code=503)
            response.headers.set("Retry-After", "5")
            await self.transactions.send_response(response)
            return
        if not request.contact:
            await self._reply(request, 400, "Missing Contact")
            return
        offer: sdp.MediaDescription | None = None
        if request.body:
            ctype = request.content_type
            if ctype is None or ctype.mime_type.lower() != "application/sdp":
                response = create_response(request=request, code=415)
                response.headers.set("Accept", "application/sdp")
                await self.transactions.send_response(response)
                return
            try:
                offer = sdp.parse(request.body.decode("utf-8", "replace"))
                sdp.negotiate(offer)
            except sdp.NoCommonCodec as exc:
                response = create_response(request=request, code=488)
                response.headers.set("Warning", f'304 switchboard "{str(exc)[:60]}"')
                await self.transactions.send_response(response)
                return
            except sdp.SdpError as exc:
                await self._reply(request, 400, "Bad SDP")
                logger.info("bad SDP in INVITE %s: %s", request.call_id, exc)
                return
        call = IncomingCall(self, request, offer)
        self._invites[key] = call
        self._calls[call.call_id] = call
        if self.on_invite is None:
            await call.reject(480, "No handler")
            return
        self._spawn(self._run_handler(call))

    async def _run_handler(self, call: IncomingCall) -> None:
        assert self.on_invite is not None
        try:
            await self.on_invite(call)
        except Exception:
            logger.exception("on_invite handler failed for %s", call.call_id)
            if not call.decided and not call.ended.is_set():
                await call.reject(500, "Server Internal Error")
            return
        if not call.decided and not call.ended.is_set():
            await call.reject(480, "Temporarily Unavailable")

    async def _on_cancel(self, request: sipmessage.Request) -> None:
        branch, sent_by, _ = get_server_transaction_key(request)
        for call in list(self._calls.values()):
            if isinstance(call, IncomingCall) and get_server_transaction_key(call.invite) == (
                branch,
                sent_by,
                "INVITE",
            ):
                await call._cancel(request)
                return
        await self._reply(request, 481)


def _invite_key(request: sipmessage.Request) -> tuple[str, str, int]:
    tag = request.from_address.parameters.get("tag") or ""
    return (request.call_id, str(tag), request.cseq.sequence)


def _with_transport(uri: sipmessage.URI, transport: str) -> sipmessage.URI:
    return dataclasses.replace(uri, parameters=uri.parameters.replace(transport=transport.lower()))
