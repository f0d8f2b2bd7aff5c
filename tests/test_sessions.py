"""Log-in sessions: a token maps to its user until it expires, is dropped or is evicted."""

from __future__ import annotations

from switchboard.coach_ui import sessions
from switchboard.coach_ui.sessions import Sessions

from switchboard.users import Role, User

ALICE = User("alice", Role.AGENT)
SUE = User("sue", Role.SUPERVISOR)


def test_a_token_names_its_user_until_dropped():
    s = Sessions()
    a, b = s.create(ALICE), s.create(SUE)
    assert a != b and len(a) >= 40  # 32 random bytes, URL-safe
    assert s.user(a) == ALICE and s.user(b) == SUE
    assert s.user(None) is None and s.user("") is None and s.user(a + "x") is None
    s.drop(a)
    assert s.user(a) is None and s.user(b) == SUE
    s.drop(None)  # logging out without a session is harmless


def test_a_session_ends_after_its_lifetime(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(sessions.time, "monotonic", lambda: now[0])
    s = Sessions(ttl_s=60)
    token = s.create(ALICE)
    now[0] += 59
    assert s.user(token) == ALICE
    now[0] += 2
    assert s.user(token) is None
    now[0] -= 2  # gone for good, not merely hidden while the clock is past it
    assert s.user(token) is None


def test_a_flood_of_log_ins_evicts_the_oldest_sessions(monkeypatch):
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    s = Sessions()
    tokens = [s.create(ALICE) for _ in range(5)]
    assert [s.user(t) for t in tokens] == [None, None, ALICE, ALICE, ALICE]
