"""sipua's transaction layer with the hooks a UA core needs and a gate for bad requests.

What sipua's layer does not do, and this subclass adds:

* a request missing Via/From/To/Call-ID/CSeq (or with a bad Content-Length) is answered
  400 when a reply can be routed, dropped otherwise, instead of tripping an assert;
* an ACK for a 2xx matches no transaction (RFC 3261 17.2.1: the INVITE transaction ends
  at the 2xx), and sipua drops it; here it goes up to the dialog, which stops the 2xx
  retransmissions the UA core owes over UDP (RFC 3261 13.3.1.4);
* provisional responses (180) and 2xx retransmissions reach ``response_observer`` so a
  UAC can report ringing and re-ACK a repeated 200;
* a retransmitted INVITE gets the last provisional response again, not a new 100;
* timer B ends an outgoing INVITE only while no provisional response came (the Calling
  state, RFC 3261 17.1.1.2): sipua also fires it in Proceeding, which would hang up on an
  agent's phone that rings for more than 32 s. The caller bounds ringing with CANCEL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sipmessage
from sipua import TransactionLayer, create_response
from sipua.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    TransactionState,
    get_client_transaction_key,
    get_server_transaction_key,
)

logger = logging.getLogger(__name__)

ResponseObserver = Callable[[sipmessage.Response, bool], None]


def request_defect(request: sipmessage.Request) -> str | None:
    """Why ``request`` cannot be processed, or None if it is well formed."""
    defect = getattr(request, "defect", None)
    if defect:
        return str(defect)
    try:
        vias = request.via
        if not vias:
            return "missing Via"
        if not vias[0].parameters.get("branch"):
            return "missing Via branch"
        if not request.headers.get("Call-ID"):
            return "missing Call-ID"
        # Parsing them is the check: sipmessage raises on a malformed address.
        _ = (request.from_address, request.to_address)
        cseq = request.cseq
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"bad header: {exc!r}"
    if cseq.method != request.method:
        return "CSeq method does not match the request"
    return None


def bad_request(request: sipmessage.Request, reason: str) -> sipmessage.Response | None:
    """A 400 built from the raw headers, or None when it could not be routed back."""
    vias = request.headers.getlist("Via")
    if not vias:
        return None
    response = sipmessage.Response(400, "Bad Request")
    response.headers.setlist("Via", vias)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is not None:
            response.headers.set(name, value)
    response.headers.set("Warning", f'399 switchboard "{reason[:80]}"')
    return response


class RingingInviteTransaction(ClientInviteTransaction):
    """sipua's INVITE client transaction whose timer B spares a ringing call."""

    def _timer_b_expired(self) -> None:
        if self._state == TransactionState.Calling:
            super()._timer_b_expired()


class SipTransactionLayer(TransactionLayer):
    """sipua's transaction layer plus request validation and UA-core hooks."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        #: Called with (response, matched) for every response received; ``matched`` is
        #: False for one no client transaction expected (a retransmitted 2xx).
        self.response_observer: ResponseObserver | None = None
        self._last_provisional: dict[tuple[str, str, str], sipmessage.Response] = {}
        self.rejected = 0

    async def send_request(self, request: sipmessage.Request) -> sipmessage.Response:
        """sipua's ``send_request``, with :class:`RingingInviteTransaction` for INVITEs."""
        key = get_client_transaction_key(request)
        if key in self._client_transactions:
            raise RuntimeError("a client transaction exists for this request")
        transaction: ClientInviteTransaction | ClientNonInviteTransaction
        if request.method == "INVITE":
            transaction = RingingInviteTransaction(request=request, transaction_layer=self)
        else:
            transaction = ClientNonInviteTransaction(request=request, transaction_layer=self)
        self._client_transactions[key] = transaction
        try:
            return await transaction.run()
        except TimeoutError:
            return create_response(request=request, code=408)
        except OSError:  # refused, unreachable: sipua leaves the transaction behind
            self._client_transactions.pop(key, None)
            return create_response(request=request, code=503)

    async def send_response(self, response: sipmessage.Response) -> None:
        """Send through the server transaction, remembering 1xx for retransmitted INVITEs."""
        key = get_server_transaction_key(response)
        if response.code < 200:
            self._last_provisional[key] = response
        else:
            self._last_provisional.pop(key, None)
        await super().send_response(response)

    async def _receive_request(self, request: sipmessage.Request) -> None:
        defect = request_defect(request)
        if defect is not None:
            self.rejected += 1
            logger.info("bad %s request: %s", request.method, defect)
            reply = bad_request(request, defect) if request.method != "ACK" else None
            if reply is not None:
                try:
                    await self._transport_layer.send_message(reply)
                except Exception as exc:
                    logger.info("could not send 400: %s", exc)
            return
        key = get_server_transaction_key(request)
        transaction = self._server_transactions.get(key)
        if transaction is None and request.method == "ACK":
            if self.request_handler is not None:
                await self.request_handler(request)
            return
        if (
            isinstance(transaction, ServerInviteTransaction)
            and request.method == "INVITE"
            and transaction._state == TransactionState.Proceeding
            and key in self._last_provisional
        ):
            await self._transport_layer.send_message(self._last_provisional[key])
            return
        await super()._receive_request(request)

    async def _receive_response(self, response: sipmessage.Response) -> None:
        try:
            key = get_client_transaction_key(response)
        except (AssertionError, IndexError, ValueError):
            return
        matched = key in self._client_transactions
        if self.response_observer is not None:
            try:
                self.response_observer(response, matched)
            except Exception:
                logger.exception("response observer failed")
        if matched:
            await super()._receive_response(response)

    def _transaction_terminated(self, transaction: object) -> None:
        request = getattr(transaction, "_request", None)
        if isinstance(transaction, ServerInviteTransaction) and request is not None:
            self._last_provisional.pop(get_server_transaction_key(request), None)
        super()._transaction_terminated(transaction)  # type: ignore[arg-type]
