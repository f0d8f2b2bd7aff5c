"""Server-side digest: HA1 storage, qop=auth, expiring nonces (stale), replays, forgeries."""

from __future__ import annotations

from sipmessage import AuthCredentials, AuthParameters
from switchboard.telephony.sip.digest import DigestAuthenticator, Outcome, ha1, response

REALM = "switchboard"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _credentials(
    auth: DigestAuthenticator,
    user: str,
    password: str,
    *,
    nc: str = "00000001",
    nonce: str | None = None,
    algorithm: str = "MD5",
) -> AuthCredentials:
    challenge = auth.challenge()
    nonce = nonce or challenge.parameters["nonce"]
    uri = "sip:127.0.0.1:5060"
    resp = response(
        ha1_hex=ha1(user, REALM, password, algorithm),
        method="REGISTER",
        uri=uri,
        nonce=nonce,
        algorithm=algorithm,
        qop="auth",
        nc=nc,
        cnonce="abc123",
    )
    return AuthCredentials(
        scheme="Digest",
        parameters=AuthParameters(
            username=user,
            realm=REALM,
            nonce=nonce,
            uri=uri,
            response=resp,
            algorithm=algorithm,
            qop="auth",
            nc=nc,
            cnonce="abc123",
            opaque=challenge.parameters["opaque"],
        ),
    )


def test_rfc2617_style_known_answer():
    # RFC 2617 section 3.5's example values, MD5 with qop=auth.
    h1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert h1 == "939e7578ed9e3c518a452acee763bce9"
    assert (
        response(
            ha1_hex=h1,
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


def test_good_password_passes_and_store_holds_only_ha1():
    store = {"agent1": ha1("agent1", REALM, "pw")}
    auth = DigestAuthenticator(REALM, store)
    assert "pw" not in store.values()
    verdict = auth.verify(_credentials(auth, "agent1", "pw"), "REGISTER")
    assert verdict.outcome == Outcome.OK and verdict.user == "agent1"


def test_wrong_password_and_unknown_user_look_the_same():
    auth = DigestAuthenticator(REALM, {"agent1": ha1("agent1", REALM, "pw")}.get)
    assert auth.verify(_credentials(auth, "agent1", "nope"), "REGISTER").outcome == Outcome.FAILED
    assert auth.verify(_credentials(auth, "agent9", "pw"), "REGISTER").outcome == Outcome.FAILED


def test_expired_nonce_is_stale_and_replayed_count_refused():
    clock = Clock()
    auth = DigestAuthenticator(REALM, {"a": ha1("a", REALM, "pw")}, nonce_ttl_s=60, clock=clock)
    nonce = auth.challenge().parameters["nonce"]
    assert auth.verify(_credentials(auth, "a", "pw", nonce=nonce), "REGISTER").outcome == Outcome.OK
    replay = _credentials(auth, "a", "pw", nonce=nonce)
    assert auth.verify(replay, "REGISTER").outcome == Outcome.STALE
    ok2 = _credentials(auth, "a", "pw", nonce=nonce, nc="00000002")
    assert auth.verify(ok2, "REGISTER").outcome == Outcome.OK
    clock.t += 61
    late = _credentials(auth, "a", "pw", nonce=nonce, nc="00000003")
    assert auth.verify(late, "REGISTER").outcome == Outcome.STALE
    assert 'stale="true"' in str(auth.challenge(stale=True)) or "stale=true" in str(
        auth.challenge(stale=True)
    )


def test_forged_or_foreign_nonce_and_missing_fields():
    auth = DigestAuthenticator(REALM, {"a": ha1("a", REALM, "pw")})
    other = DigestAuthenticator(REALM, {"a": ha1("a", REALM, "pw")})
    foreign = other.challenge().parameters["nonce"]
    assert (
        auth.verify(_credentials(auth, "a", "pw", nonce=foreign), "REGISTER").outcome
        == Outcome.MISSING
    )
    assert (
        auth.verify(_credentials(auth, "a", "pw", nonce="!!notbase64"), "REGISTER").outcome
        == Outcome.MISSING
    )
    assert auth.verify(None, "REGISTER").outcome == Outcome.MISSING
    bare = AuthCredentials(scheme="Digest", parameters=AuthParameters(username="a"))
    assert auth.verify(bare, "REGISTER").outcome == Outcome.MISSING
    basic = AuthCredentials(scheme="Basic", token="YTpwdw==")
    assert auth.verify(basic, "REGISTER").outcome == Outcome.MISSING
    # Answers to another realm's challenge, or qop=auth without its nonce-count and client
    # nonce, are not attempts at ours: challenged afresh (MISSING), not failed or stale.
    good = _credentials(auth, "a", "pw").parameters
    for change in ({"realm": "elsewhere"}, {"nc": None}, {"cnonce": None}):
        odd = AuthCredentials(scheme="Digest", parameters=AuthParameters(
            **{k: v for k, v in {**dict(good), **change}.items() if v is not None}))
        assert auth.verify(odd, "REGISTER").outcome == Outcome.MISSING, change


def test_sha256():
    auth = DigestAuthenticator(REALM, {"a": ha1("a", REALM, "pw", "SHA-256")}, algorithm="SHA-256")
    creds = _credentials(auth, "a", "pw", algorithm="SHA-256")
    assert auth.verify(creds, "REGISTER").outcome == Outcome.OK
