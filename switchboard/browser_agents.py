"""Agents who take handed-off calls in their browser, beside agents on SIP phones.

An agent logged in on the agent page keeps a WebSocket open: while it is open the agent is
reachable in the browser (:meth:`AgentDesk.present`). A handoff rings the agent's pages
with the call's context (transcript so far, intent, anger); the agent answers from the
page with a WebRTC offer, and that connection's edge becomes the call's agent leg.

:class:`AgentLines` is the call center's :class:`~switchboard.callcenter.AgentLine`: an
agent with the page open is rung there, otherwise on their SIP phone, so callers of either
kind reach agents of either kind (the call only ever sees edges).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCSessionDescription

from switchboard.callcenter import AgentLine
from switchboard.telephony import webrtc
from switchboard.telephony.edge import MediaEdge

log = logging.getLogger(__name__)

#: How long an answered page gets for ICE and DTLS before the answer counts as failed.
CONNECT_S = 15.0


class NotRinging(LookupError):
    """An answer for a call that is not ringing this agent (any more)."""


@dataclass
class _Ring:
    agent: str
    context: dict
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop()
                                   .create_future())


class AgentDesk:
    """The agents' open pages, their ringing calls and the calls they are on."""

    def __init__(self) -> None:
        #: agent → the send function of each open page.
        self.pages: dict[str, list[Callable[[dict], None]]] = {}
        self._rings: dict[str, _Ring] = {}
        #: call id → the agent ringing for it or on it (their page may read the call).
        self.assigned: dict[str, str] = {}

    # --- pages

    def join(self, agent: str, send: Callable[[dict], None]) -> None:
        self.pages.setdefault(agent, []).append(send)
        for call_id, ring in self._rings.items():  # a page opened while ringing rings too
            if ring.agent == agent:
                send({"kind": "ringing", "call_id": call_id, "context": ring.context})

    def leave(self, agent: str, send: Callable[[dict], None]) -> None:
        pages = self.pages.get(agent, [])
        if send in pages:
            pages.remove(send)
        if not pages:
            self.pages.pop(agent, None)

    def present(self, agent: str) -> bool:
        return bool(self.pages.get(agent))

    def may_read(self, agent: str, call_id: str) -> bool:
        """Whether ``agent``'s page may read the call (ringing for it or on it)."""
        return self.assigned.get(call_id) == agent

    def _tell(self, agent: str, message: dict) -> None:
        for send in list(self.pages.get(agent, [])):
            try:
                send(message)
            except Exception:  # noqa: BLE001 - a closing page misses the message
                log.debug("agent page of %s gone", agent)

    # --- a handoff

    async def ring(self, agent: str, context: dict) -> MediaEdge | None:
        """Ring ``agent``'s pages; their edge once answered and connected, else None."""
        call_id = str(context.get("call_id", ""))
        if not self.present(agent) or not call_id or call_id in self._rings:
            return None
        ring = _Ring(agent, context)
        self._rings[call_id] = ring
        self.assigned[call_id] = agent
        answered = False
        try:
            self._tell(agent, {"kind": "ringing", "call_id": call_id, "context": context})
            edge = await ring.future
            if edge is None:
                return None
            if not await edge.wait_connected(CONNECT_S):
                await edge.close("not connected")
                return None
            answered = True
            self._watch(call_id, agent, edge)
            return edge
        finally:
            self._rings.pop(call_id, None)
            if not answered:
                self.assigned.pop(call_id, None)
                self._tell(agent, {"kind": "ring_ended", "call_id": call_id})
                if ring.future.done() and not ring.future.cancelled() and ring.future.result():
                    with contextlib.suppress(Exception):
                        await ring.future.result().close("ring ended")

    async def answer(self, agent: str, call_id: str, offer_sdp: str
                     ) -> RTCSessionDescription:
        """The agent's page answers with its offer: our SDP answer (raises
        :class:`NotRinging`, :class:`~switchboard.telephony.webrtc.OfferError`)."""
        ring = self._rings.get(call_id)
        if ring is None or ring.agent != agent or ring.future.done():
            raise NotRinging(call_id)
        edge, local = await webrtc.answer(offer_sdp, "offer", peer=f"webrtc:agent:{agent}")
        if ring.future.done():  # the caller hung up while we built the answer
            await edge.close("ring ended")
            raise NotRinging(call_id)
        ring.future.set_result(edge)
        return local

    def decline(self, agent: str, call_id: str) -> None:
        ring = self._rings.get(call_id)
        if ring is not None and ring.agent == agent and not ring.future.done():
            ring.future.set_result(None)

    def _watch(self, call_id: str, agent: str, edge: webrtc.WebRtcEdge) -> None:
        async def until_closed() -> None:
            await edge.wait_ended()
            if self.assigned.get(call_id) == agent:
                del self.assigned[call_id]
            self._tell(agent, {"kind": "call_ended", "call_id": call_id,
                               "reason": edge.ended})

        asyncio.get_running_loop().create_task(until_closed(), name=f"agent:{agent}")


class AgentLines:
    """Rings an agent where they are: their open page first, else their SIP phone."""

    def __init__(self, desk: AgentDesk, phone: AgentLine | None = None) -> None:
        self.desk = desk
        self.phone = phone

    async def ring(self, agent: str, context: dict) -> MediaEdge | None:
        if self.desk.present(agent):
            return await self.desk.ring(agent, context)
        if self.phone is not None:
            return await self.phone.ring(agent, context)
        return None
