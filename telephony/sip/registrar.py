"""A registrar (RFC 3261 section 10) for agents' phones: digest-authenticated REGISTER.

Bindings map a user (the agent's extension) to the Contact URIs their phones registered,
each with an expiry. Every answer to a REGISTER that fails authentication is the same
for an unknown user and a wrong password, so the registrar does not reveal extensions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sipmessage
from sipua import create_response
from switchboard.telephony.sip.digest import CredentialLookup, DigestAuthenticator, Outcome

logger = logging.getLogger(__name__)


@dataclass
class Binding:
    """One registered contact of a user."""

    user: str
    contact: sipmessage.URI
    expires_at: float
    call_id: str
    cseq: int

    def remaining(self, now: float) -> int:
        """Seconds left, for the Contact's expires parameter in our 200."""
        return max(0, int(self.expires_at - now))


class Registrar:
    """Authenticates REGISTER requests and keeps the bindings ``dial`` looks up."""

    def __init__(
        self,
        realm: str,
        credentials: Mapping[str, str] | CredentialLookup,
        *,
        nonce_ttl_s: float = 300.0,
        default_expires: int = 3600,
        min_expires: int = 60,
        max_expires: int = 7200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth = DigestAuthenticator(realm, credentials, nonce_ttl_s=nonce_ttl_s, clock=clock)
        self.default_expires = default_expires
        self.min_expires = min_expires
        self.max_expires = max_expires
        self._clock = clock
        self._bindings: dict[str, list[Binding]] = {}

    def lookup(self, user: str) -> list[sipmessage.URI]:
        """The user's live contacts, most recently registered first."""
        now = self._clock()
        live = [b for b in self._bindings.get(user, []) if b.expires_at > now]
        if live:
            self._bindings[user] = live
        else:
            self._bindings.pop(user, None)
        return [b.contact for b in sorted(live, key=lambda b: -b.expires_at)]

    def bindings(self, user: str) -> list[Binding]:
        """The user's live bindings (for status pages and tests)."""
        self.lookup(user)
        return list(self._bindings.get(user, []))

    def handle(self, request: sipmessage.Request) -> sipmessage.Response:
        """The response to one REGISTER."""
        try:
            credentials = request.authorization
        except ValueError:
            credentials = None
        verdict = self.auth.verify(credentials, request.method)
        if verdict.outcome in (Outcome.MISSING, Outcome.STALE):
            response = create_response(request=request, code=401)
            response.www_authenticate = self.auth.challenge(stale=verdict.outcome == Outcome.STALE)
            return response
        if verdict.outcome != Outcome.OK or verdict.user is None:
            return create_response(request=request, code=403)
        # The credentials must be the address-of-record's own (RFC 3261 10.3 step 6).
        aor_user = request.to_address.uri.user
        if aor_user != verdict.user:
            return create_response(request=request, code=403)
        try:
            return self._update(request, verdict.user)
        except ValueError as exc:
            logger.info("bad REGISTER from %s: %s", verdict.user, exc)
            return create_response(request=request, code=400)

    def _update(self, request: sipmessage.Request, user: str) -> sipmessage.Response:
        now = self._clock()
        header_expires = request.expires
        raw_contacts = request.headers.getlist("Contact")
        current = [b for b in self._bindings.get(user, []) if b.expires_at > now]
        if any(v.strip() == "*" for v in raw_contacts):
            # "Contact: *" with Expires: 0 removes every binding (RFC 3261 10.2.2).
            if header_expires != 0 or len(raw_contacts) != 1:
                raise ValueError("Contact: * needs Expires: 0 and no other contact")
            self._bindings.pop(user, None)
            return create_response(request=request, code=200)
        contacts = request.contact
        for address in contacts:
            expires = address.parameters.get("expires")
            seconds = int(expires) if expires is not None else header_expires
            if seconds is None:
                seconds = self.default_expires
            if 0 < seconds < self.min_expires:
                response = create_response(request=request, code=423)
                response.min_expires = self.min_expires
                return response
            seconds = min(seconds, self.max_expires)
            same = [b for b in current if str(b.contact) == str(address.uri)]
            for b in same:
                if b.call_id == request.call_id and request.cseq.sequence <= b.cseq:
                    raise ValueError("out-of-order REGISTER")
                current.remove(b)
            if seconds > 0:
                current.append(
                    Binding(
                        user=user,
                        contact=address.uri,
                        expires_at=now + seconds,
                        call_id=request.call_id,
                        cseq=request.cseq.sequence,
                    )
                )
        if current:
            self._bindings[user] = current
        else:
            self._bindings.pop(user, None)
        response = create_response(request=request, code=200)
        response.contact = [
            sipmessage.Address(
                uri=b.contact,
                parameters=sipmessage.Parameters(expires=str(b.remaining(now))),
            )
            for b in current
        ]
        return response
