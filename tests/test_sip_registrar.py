"""The registrar: 401 challenge, bindings with expiry, removal, and no user enumeration."""

from __future__ import annotations

import sipmessage
from sipmessage import AuthCredentials, AuthParameters
from switchboard.telephony.sip.digest import ha1, response
from switchboard.telephony.sip.registrar import Registrar

REALM = "switchboard"


class Clock:
    def __init__(self) -> None:
        self.t = 5_000_000.0

    def __call__(self) -> float:
        return self.t


def _register(
    user: str,
    contact: str = "<sip:{u}@127.0.0.1:5070>",
    expires: int | None = 120,
    cseq: int = 1,
    call_id: str = "reg-1",
) -> sipmessage.Request:
    req = sipmessage.Request("REGISTER", sipmessage.URI.parse("sip:127.0.0.1:5060"))
    req.via = [sipmessage.Via.parse("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc" + str(cseq))]
    req.from_address = sipmessage.Address.parse(f"<sip:{user}@127.0.0.1>;tag=x1")
    req.to_address = sipmessage.Address.parse(f"<sip:{user}@127.0.0.1>")
    req.call_id = call_id
    req.cseq = sipmessage.CSeq(sequence=cseq, method="REGISTER")
    req.headers.set("Contact", contact.format(u=user))
    if expires is not None:
        req.expires = expires
    return req


def _authorize(
    req: sipmessage.Request,
    challenge: sipmessage.AuthChallenge,
    user: str,
    password: str,
    nc: int = 1,
) -> sipmessage.Request:
    nonce = challenge.parameters["nonce"]
    uri = str(req.uri)
    resp = response(
        ha1_hex=ha1(user, REALM, password),
        method="REGISTER",
        uri=uri,
        nonce=nonce,
        qop="auth",
        nc=f"{nc:08x}",
        cnonce="c0ffee",
    )
    req.authorization = AuthCredentials(
        scheme="Digest",
        parameters=AuthParameters(
            username=user,
            realm=REALM,
            nonce=nonce,
            uri=uri,
            response=resp,
            algorithm="MD5",
            qop="auth",
            nc=f"{nc:08x}",
            cnonce="c0ffee",
        ),
    )
    return req


def _registrar(clock: Clock | None = None) -> Registrar:
    return Registrar(
        REALM,
        {"agent1": ha1("agent1", REALM, "pw")},
        clock=clock or Clock(),
        min_expires=60,
        max_expires=3600,
    )


def test_challenge_then_binding_then_expiry():
    clock = Clock()
    reg = _registrar(clock)
    first = reg.handle(_register("agent1"))
    assert first.code == 401
    challenge = first.www_authenticate
    assert challenge.parameters["qop"] == "auth" and challenge.parameters["realm"] == REALM
    ok = reg.handle(_authorize(_register("agent1", cseq=2), challenge, "agent1", "pw"))
    assert ok.code == 200
    assert ok.contact[0].parameters["expires"] == "120"
    assert [str(u) for u in reg.lookup("agent1")] == ["sip:agent1@127.0.0.1:5070"]
    clock.t += 121
    assert reg.lookup("agent1") == []


def test_unknown_user_and_wrong_password_get_identical_answers():
    reg = _registrar()
    a = reg.handle(_register("agent1"))
    b = reg.handle(_register("agent77"))
    assert a.code == b.code == 401
    assert set(a.www_authenticate.parameters) == set(b.www_authenticate.parameters)
    wrong = reg.handle(_authorize(_register("agent1", cseq=2), a.www_authenticate, "agent1", "x"))
    unknown = reg.handle(
        _authorize(_register("agent77", cseq=2), b.www_authenticate, "agent77", "pw")
    )
    assert wrong.code == unknown.code == 403
    assert sorted(wrong.headers.keys()) == sorted(unknown.headers.keys())
    assert reg.lookup("agent1") == [] and reg.lookup("agent77") == []


def test_other_users_credentials_cannot_register_an_aor():
    reg = Registrar(
        REALM, {"agent1": ha1("agent1", REALM, "pw"), "agent2": ha1("agent2", REALM, "pw2")}
    )
    ch = reg.handle(_register("agent1")).www_authenticate
    req = _authorize(_register("agent1", cseq=2), ch, "agent2", "pw2")
    assert reg.handle(req).code == 403


def test_too_brief_unregister_and_star():
    reg = _registrar()
    ch = reg.handle(_register("agent1")).www_authenticate
    brief = reg.handle(
        _authorize(_register("agent1", expires=10, cseq=2), ch, "agent1", "pw", nc=1)
    )
    assert brief.code == 423 and brief.min_expires == 60
    ok = reg.handle(_authorize(_register("agent1", cseq=3), ch, "agent1", "pw", nc=2))
    assert ok.code == 200 and reg.lookup("agent1")
    gone = reg.handle(_authorize(_register("agent1", expires=0, cseq=4), ch, "agent1", "pw", nc=3))
    assert gone.code == 200 and reg.lookup("agent1") == []
    reg.handle(_authorize(_register("agent1", cseq=5), ch, "agent1", "pw", nc=4))
    star = reg.handle(
        _authorize(_register("agent1", contact="*", expires=0, cseq=6), ch, "agent1", "pw", nc=5)
    )
    assert star.code == 200 and reg.lookup("agent1") == []
    bad_star = reg.handle(
        _authorize(_register("agent1", contact="*", expires=60, cseq=7), ch, "agent1", "pw", nc=6)
    )
    assert bad_star.code == 400


def test_expires_capped_and_replayed_register_refused():
    reg = _registrar()
    ch = reg.handle(_register("agent1")).www_authenticate
    ok = reg.handle(_authorize(_register("agent1", expires=99999, cseq=2), ch, "agent1", "pw"))
    assert ok.contact[0].parameters["expires"] == "3600"
    replay = reg.handle(_authorize(_register("agent1", expires=99999, cseq=2), ch, "agent1", "pw"))
    assert replay.code == 401 and "stale" in replay.www_authenticate.parameters
