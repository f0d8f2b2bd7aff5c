"""Log-in sessions for the people who work the calls (agents, supervisors).

A session is a random token in an HttpOnly, SameSite=Strict cookie, mapped in memory to
the user it was issued to; a restart logs everyone out. Passwords are checked by
:meth:`switchboard.users.UserStore.verify` (Argon2). Kept deliberately plain: the
coaching issue builds on it.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from switchboard.users import User

COOKIE = "sb_session"
#: A session lasts a working day, then the user logs in again.
TTL_S = 12 * 3600
#: Sessions kept at once; the oldest goes first (a flood of log-ins cannot grow memory).
MAX_SESSIONS = 10_000


class Sessions:
    """Session tokens → users."""

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._by_token: OrderedDict[str, tuple[User, float]] = OrderedDict()

    def create(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        self._by_token[token] = (user, time.monotonic() + self.ttl_s)
        while len(self._by_token) > MAX_SESSIONS:
            self._by_token.popitem(last=False)
        return token

    def user(self, token: str | None) -> User | None:
        """The session's user; None for no, unknown or expired token."""
        if not token:
            return None
        entry = self._by_token.get(token)
        if entry is None:
            return None
        user, expires = entry
        if time.monotonic() > expires:
            del self._by_token[token]
            return None
        return user

    def drop(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)
