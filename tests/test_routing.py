import pytest
from switchboard.telephony.routing import Role, Routing, RoutingError, SupervisorMode


def bridged() -> Routing:
    r = Routing()
    for node, role in (("caller", Role.CALLER), ("agent", Role.AGENT), ("bot", Role.BOT),
                       ("coach", Role.COACH), ("sup", Role.SUPERVISOR)):
        r.add(node, role)
    r.connect("caller", "agent")
    r.connect("agent", "caller")
    r.connect("agent", "coach")
    return r


def test_coach_prompts_can_reach_only_an_agent():
    r = bridged()
    assert r.hears("agent", "coach")
    for listener in ("caller", "sup"):
        with pytest.raises(RoutingError):
            r.connect(listener, "coach")
    assert not r.hears("caller", "coach")


def test_supervisor_modes_follow_chanspy():
    r = bridged()
    r.set_supervisor("sup", SupervisorMode.LISTEN, "caller", "agent")
    assert r.sources_for("sup") == ["agent", "caller"]
    assert not r.hears("agent", "sup") and not r.hears("caller", "sup")

    r.set_supervisor("sup", SupervisorMode.WHISPER, "caller", "agent")
    assert r.hears("agent", "sup") and not r.hears("caller", "sup")

    r.set_supervisor("sup", SupervisorMode.BARGE, "caller", "agent")
    assert r.hears("agent", "sup") and r.hears("caller", "sup")

    # Back to listening takes the supervisor out of both parties' ears again.
    r.set_supervisor("sup", SupervisorMode.LISTEN, "caller", "agent")
    assert not r.hears("agent", "sup") and not r.hears("caller", "sup")
    assert r.sources_for("sup") == ["agent", "caller"]


def test_nobody_hears_themselves_and_removal_drops_routes():
    r = bridged()
    with pytest.raises(RoutingError):
        r.connect("caller", "caller")
    r.remove("agent")
    assert r.sources_for("caller") == []
    with pytest.raises(RoutingError):
        r.connect("caller", "agent")


def test_a_node_keeps_its_role():
    r = bridged()
    with pytest.raises(RoutingError):
        r.add("coach", Role.BOT)
