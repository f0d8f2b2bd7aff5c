"""Who hears whom in a call: the routing matrix.

A call has *sources* of audio (each party's microphone, the bot's voice, the coach's
whispered prompts, the hold music) and *listeners* (the parties). The matrix is the set of
(listener, source) pairs that are connected; the mixer sums, for each listener, exactly the
sources it hears. Everything a supervisor or the coach does is a change of this matrix:

- bot mode: caller ← bot; waiting for an agent: caller ← hold;
- bridged: caller ↔ agent, agent ← coach (whisper prompts: the agent's ear only);
- supervisor listen: supervisor ← caller + agent; whisper: also agent ← supervisor;
  barge: also caller ← supervisor.

Some sources are *private to a role*: the coach's prompts may only ever reach an agent.
The matrix refuses any other route for them, so no later change of call logic can leak a
whisper prompt to a caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a leg or a source is in the call."""

    CALLER = "caller"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    BOT = "bot"
    COACH = "coach"
    HOLD = "hold"


class SupervisorMode(StrEnum):
    """How a supervisor is joined to a call (Asterisk ChanSpy's spy, whisper, barge)."""

    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


#: Sources that may only reach listeners of the given roles.
PRIVATE_SOURCES: dict[Role, frozenset[Role]] = {
    Role.COACH: frozenset({Role.AGENT}),
}


class RoutingError(ValueError):
    """A route the call model forbids (a whisper prompt towards a caller, say)."""


@dataclass(frozen=True)
class Endpoint:
    """A source or listener: its id in the call and its role."""

    id: str
    role: Role


class Routing:
    """The routing matrix of one call."""

    def __init__(self) -> None:
        self._nodes: dict[str, Endpoint] = {}
        self._routes: set[tuple[str, str]] = set()

    def add(self, node_id: str, role: Role) -> Endpoint:
        """Declare a source or listener (idempotent for the same role)."""
        node = self._nodes.get(node_id)
        if node is not None and node.role != role:
            raise RoutingError(f"{node_id} is already a {node.role}, not a {role}")
        node = self._nodes[node_id] = Endpoint(node_id, role)
        return node

    def remove(self, node_id: str) -> None:
        """Forget a node and every route to or from it."""
        self._nodes.pop(node_id, None)
        self._routes = {(li, so) for li, so in self._routes if node_id not in (li, so)}

    def role(self, node_id: str) -> Role:
        return self._nodes[node_id].role

    def connect(self, listener: str, source: str) -> None:
        """``listener`` hears ``source`` from the next mixer tick on."""
        if listener == source:
            raise RoutingError(f"{listener} cannot hear itself")
        li, so = self._node(listener), self._node(source)
        allowed = PRIVATE_SOURCES.get(so.role)
        if allowed is not None and li.role not in allowed:
            raise RoutingError(f"{source} ({so.role}) may not reach {listener} ({li.role})")
        self._routes.add((listener, source))

    def disconnect(self, listener: str, source: str) -> None:
        self._routes.discard((listener, source))

    def hears(self, listener: str, source: str) -> bool:
        return (listener, source) in self._routes

    def sources_for(self, listener: str) -> list[str]:
        """The sources ``listener`` hears, in a stable order."""
        return sorted(so for li, so in self._routes if li == listener)

    def listeners(self) -> list[str]:
        """Every node that hears at least one source."""
        return sorted({li for li, _ in self._routes})

    def set_supervisor(self, supervisor: str, mode: SupervisorMode, caller: str,
                       agent: str | None) -> None:
        """Join ``supervisor`` in ``mode``: listening always hears both sides; whisper adds
        the agent hearing the supervisor; barge adds the caller too."""
        for other in (caller, agent):
            if other is None:
                continue
            self.connect(supervisor, other)
            self.disconnect(other, supervisor)
        if mode in (SupervisorMode.WHISPER, SupervisorMode.BARGE) and agent is not None:
            self.connect(agent, supervisor)
        if mode is SupervisorMode.BARGE:
            self.connect(caller, supervisor)

    def snapshot(self) -> dict[str, list[str]]:
        """listener → sources, for the record and the API."""
        return {li: self.sources_for(li) for li in self.listeners()}

    def _node(self, node_id: str) -> Endpoint:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise RoutingError(f"unknown source or listener {node_id!r}") from None
