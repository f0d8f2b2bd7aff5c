"""Twilio's request signature (``X-Twilio-Signature``): proof a request came from the carrier.

Twilio signs every webhook and the media stream's WebSocket handshake with the account's
auth token: base64 of HMAC-SHA1 over the full URL it called, followed by each POST
parameter's name and value in name order (a WebSocket handshake has none). Written here
rather than taken from the ``twilio`` package: that SDK brings an HTTP client stack for
one twenty-line check, and the scheme is fixed by Twilio's published test vector (kept in
tests/test_twilio_signature.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def signature(token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """The signature Twilio sends for a request to ``url`` with POST ``params``."""
    payload = url + "".join(k + params[k] for k in sorted(params or {}))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid(token: str, url: str, given: str | None,
          params: Mapping[str, str] | None = None) -> bool:
    """Whether ``given`` signs the request, allowing the URL with or without its default
    port (Twilio's own libraries accept both: proxies add or drop it)."""
    if not token or not given:
        return False
    return any(hmac.compare_digest(signature(token, u, params), given)
               for u in _port_variants(url))


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if default is None or not host or parts.port not in (None, default):
        return [url]
    bare = parts._replace(netloc=_netloc(parts, host))
    with_port = parts._replace(netloc=_netloc(parts, f"{host}:{default}"))
    return list(dict.fromkeys([url, urlunsplit(bare), urlunsplit(with_port)]))


def _netloc(parts, host_port: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{host_port}" if userinfo else host_port
