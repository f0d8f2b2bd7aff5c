"""Server-side HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 22.4).

sipmessage parses and prints the headers; the computation, nonces and checks are here.
We store HA1 = H(user:realm:password), never the password. Nonces are stateless
(a timestamp and an HMAC), expire after ``nonce_ttl_s`` (answered ``stale=true`` so the
phone retries without asking for a password) and their nonce-counts must increase.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sipmessage import AuthChallenge, AuthCredentials, AuthParameters

ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}

#: A user's HA1 for a realm and algorithm, or None for an unknown user.
CredentialLookup = Callable[[str], str | None]


def ha1(user: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(user:realm:password): what a credentials store keeps instead of the password."""
    return ALGORITHMS[algorithm](f"{user}:{realm}:{password}".encode())


def response(
    *,
    ha1_hex: str,
    method: str,
    uri: str,
    nonce: str,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` a client computes (the client side too, for tests and dial-outs)."""
    h = ALGORITHMS[algorithm]
    ha2 = h(f"{method}:{uri}".encode())
    if qop:
        return h(f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1_hex}:{nonce}:{ha2}".encode())


class Outcome:
    """How a credentials check ended."""

    OK = "ok"
    MISSING = "missing"  # no usable credentials: challenge
    STALE = "stale"  # right password, expired nonce: challenge with stale=true
    FAILED = "failed"  # unknown user or wrong password: the same answer for both


@dataclass(frozen=True)
class Verdict:
    """Outcome and, when authenticated, the user."""

    outcome: str
    user: str | None = None


class DigestAuthenticator:
    """Issues challenges and checks credentials against a store of HA1 values."""

    def __init__(
        self,
        realm: str,
        credentials: Mapping[str, str] | CredentialLookup,
        *,
        nonce_ttl_s: float = 300.0,
        algorithm: str = "MD5",
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm}")
        self.realm = realm
        self.algorithm = algorithm
        self.nonce_ttl_s = nonce_ttl_s
        self._lookup: CredentialLookup = (
            credentials.get if isinstance(credentials, Mapping) else credentials
        )
        self._secret = secret or os.urandom(32)
        self._clock = clock
        self._opaque = secrets.token_hex(8)
        # Highest nonce-count seen per nonce, bounded: replayed requests are refused.
        self._nc: OrderedDict[str, int] = OrderedDict()
        # A fixed fake HA1 so an unknown user costs the same work as a known one.
        self._decoy = ha1(secrets.token_hex(8), realm, secrets.token_hex(16), algorithm)

    def nonce(self) -> str:
        """A fresh nonce: issue time and its HMAC, so no server state is needed."""
        stamp = f"{self._clock():.3f}:{secrets.token_hex(6)}"
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
        return base64.b64encode(f"{stamp}:{mac}".encode()).decode().rstrip("=")

    def _nonce_state(self, nonce: str) -> str:
        """ "ok", "stale" or "bad" (not one of ours)."""
        try:
            raw = base64.b64decode(nonce + "=" * (-len(nonce) % 4)).decode()
            stamp_s, rnd, mac = raw.split(":")
        except ValueError:
            return "bad"
        expect = hmac.new(self._secret, f"{stamp_s}:{rnd}".encode(), hashlib.sha256)
        if not hmac.compare_digest(mac, expect.hexdigest()[:24]):
            return "bad"
        try:
            age = self._clock() - float(stamp_s)
        except ValueError:
            return "bad"
        # The stamp is rounded to the millisecond, so a fresh nonce can look a hair young.
        return "ok" if -1.0 <= age <= self.nonce_ttl_s else "stale"

    def challenge(self, *, stale: bool = False) -> AuthChallenge:
        """A WWW-Authenticate value for a 401."""
        params = {
            "realm": self.realm,
            "nonce": self.nonce(),
            "algorithm": self.algorithm,
            "qop": "auth",
            "opaque": self._opaque,
        }
        if stale:
            params["stale"] = "true"
        return AuthChallenge(scheme="Digest", parameters=AuthParameters(**params))

    def verify(self, credentials: AuthCredentials | None, method: str) -> Verdict:
        """Check an Authorization header for ``method``; never raises on bad input."""
        if credentials is None or credentials.parameters is None:
            return Verdict(Outcome.MISSING)
        if credentials.scheme.lower() != "digest":
            return Verdict(Outcome.MISSING)
        p = credentials.parameters
        try:
            user, realm, nonce, uri, resp = (
                p["username"],
                p["realm"],
                p["nonce"],
                p["uri"],
                p["response"],
            )
        except KeyError:
            return Verdict(Outcome.MISSING)
        algorithm = p.get("algorithm", "MD5")
        if realm != self.realm or algorithm.upper() != self.algorithm.upper():
            return Verdict(Outcome.MISSING)
        state = self._nonce_state(nonce)
        if state == "bad":
            return Verdict(Outcome.MISSING)
        qop = p.get("qop")
        nc, cnonce = p.get("nc"), p.get("cnonce")
        if qop is not None and (qop != "auth" or not nc or not cnonce):
            return Verdict(Outcome.MISSING)
        stored = self._lookup(user)
        expected = response(
            ha1_hex=stored or self._decoy,
            method=method,
            uri=uri,
            nonce=nonce,
            algorithm=self.algorithm,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
        )
        if stored is None or not hmac.compare_digest(expected, resp.lower()):
            return Verdict(Outcome.FAILED)
        if state == "stale":
            return Verdict(Outcome.STALE)
        if qop is not None and not self._fresh_count(nonce, nc or ""):
            return Verdict(Outcome.STALE)  # a replay: make the phone start a new nonce
        return Verdict(Outcome.OK, user)

    def _fresh_count(self, nonce: str, nc: str) -> bool:
        try:
            count = int(nc, 16)
        except ValueError:
            return False
        if count <= self._nc.get(nonce, 0):
            return False
        self._nc[nonce] = count
        self._nc.move_to_end(nonce)
        while len(self._nc) > 4096:
            self._nc.popitem(last=False)
        return True
