"""SIP into the call center: incoming INVITEs become calls, agents' phones are rung.

The glue between the SIP endpoint (telephony/sip/) and the call center: admission control
answers an INVITE over the limit with 503 and Retry-After; an admitted one rings, is
answered, and its RTP edge becomes the call's caller leg. Agents are users with the agent
role whose phones have registered (digest authentication against the user store); a
handoff rings them through :class:`SipAgentLine`, with the call's id and the link to its
context in the INVITE, so the agent's screen can show what the caller already said.
A supervisor's phone dialling the feature code and a live call's number
(``sip:*55<number>@server``) joins that call (switchboard/supervision.py).
"""

from __future__ import annotations

import asyncio
import logging

from switchboard.callcenter import CallCenter
from switchboard.config import Settings
from switchboard.telephony.edge import MediaEdge
from switchboard.telephony.sip.endpoint import CallFailed, IncomingCall, SipEndpoint
from switchboard.users import UserStore

log = logging.getLogger(__name__)


class SipAgentLine:
    """Rings an agent's SIP phone: the one they registered, or their desk phone's fixed
    address (``[handoff] desk_phones``)."""

    def __init__(self, endpoint: SipEndpoint, api_url: str = "",
                 desk_phones: dict[str, str] | None = None):
        self.endpoint = endpoint
        self.api_url = api_url
        self.desk_phones = desk_phones or {}

    async def ring(self, agent: str, context: dict) -> MediaEdge | None:
        call_id = context.get("call_id", "")
        headers = [("X-Switchboard-Call", call_id)]
        if self.api_url:
            headers.append(("Call-Info", f"<{self.api_url}/api/calls/{call_id}>;purpose=info"))
        try:
            outgoing = await self.endpoint.dial(self.desk_phones.get(agent, agent),
                                                headers=headers)
        except CallFailed as exc:
            log.info("agent %s cannot be rung: %s", agent, exc)
            return None
        try:
            edge = await outgoing.wait_answered()
            _forward_hold(outgoing, edge)
            return edge
        except CallFailed as exc:
            log.info("agent %s did not answer: %s", agent, exc)
            return None
        except asyncio.CancelledError:
            await asyncio.shield(outgoing.cancel())
            raise


class SipGateway:
    """The SIP endpoint, wired to a call center and the user store."""

    def __init__(self, settings: Settings, center: CallCenter, users: UserStore,
                 api_url: str = ""):
        opts = settings.sip
        self.center = center
        self.users = users
        self.endpoint = SipEndpoint(opts.host, opts.port, tuple(opts.transports),
                                    on_invite=self._on_invite, credentials=users.sip_ha1,
                                    options=opts)
        self.desk_phones = dict(settings.handoff.desk_phones)
        center.agents.line = SipAgentLine(self.endpoint, api_url, self.desk_phones)
        center.agents.roster = self._roster
        center.agents.reachable = self._reachable

    @property
    def uri(self) -> str:
        return f"sip:{self.center.settings.sip.user}@{self.endpoint.host}:{self.endpoint.port}"

    async def start(self) -> None:
        await self.endpoint.start()

    async def stop(self) -> None:
        await self.endpoint.stop()

    def _roster(self) -> list[str]:
        """Agent users first (in name order), then desk phones that are not users."""
        names = [u.name for u in self.users.list("agent")]
        return names + [d for d in self.desk_phones if d not in names]

    def _reachable(self, agent: str) -> bool:
        if agent in self.desk_phones:
            return True
        registrar = self.endpoint.registrar
        return registrar is not None and bool(registrar.lookup(agent))

    async def _on_invite(self, incoming: IncomingCall) -> None:
        code = self.center.settings.supervision.feature_code
        dialled = incoming.invite.uri.user or ""
        if code and dialled.startswith(code):
            await self._supervise(incoming, dialled[len(code):])
            return
        ok, retry_after = self.center.admit()
        if not ok:
            await incoming.reject(503, "Service Unavailable", retry_after=retry_after)
            return
        await incoming.ring()
        call = self.center.new_call("sip")
        try:
            edge = await incoming.answer()
        except Exception:
            self.center.calls.pop(call.call_id, None)
            raise
        _forward_hold(incoming, edge)
        asyncio.get_running_loop().create_task(self.center.run_call(call, edge),
                                               name=f"call:{call.call_id}")


    async def _supervise(self, incoming: IncomingCall, number: str) -> None:
        """The feature code and a live call's number: a supervisor's phone joins that call
        (listen first; DTMF 4 listen, 5 whisper, 6 barge). The INVITE must carry the
        supervisor's digest credentials (those their phone registers with): challenged
        with 401, anyone but a supervisor gets 403, an unknown number 404."""
        from switchboard.supervision import Supervision, SupervisionError
        from switchboard.telephony.routing import SupervisorMode
        from switchboard.telephony.sip.digest import Outcome

        auth = self.endpoint.registrar.auth if self.endpoint.registrar else None
        if auth is None:
            await incoming.reject(403, "Forbidden")
            return
        try:
            credentials = incoming.invite.authorization
        except ValueError:
            credentials = None
        verdict = auth.verify(credentials, "INVITE")
        if verdict.outcome in (Outcome.MISSING, Outcome.STALE):
            await incoming.reject(401, www_authenticate=auth.challenge(
                stale=verdict.outcome == Outcome.STALE))
            return
        supervisors = {u.name for u in self.users.list("supervisor")}
        if verdict.outcome != Outcome.OK or verdict.user not in supervisors:
            log.info("feature code refused to %s", verdict.user or "an unknown user")
            await incoming.reject(403, "Forbidden")
            return
        record = self.center.by_number(number)
        if record is None or record.call.ending:
            await incoming.reject(404, "No Such Call")
            return
        edge = await incoming.answer()
        try:
            await Supervision.of(self.center).join(record.call.call_id, verdict.user, edge,
                                                   SupervisorMode.LISTEN)
        except SupervisionError:  # the call ended while the phone answered
            await edge.close("call ended")


def _forward_hold(sip_call, edge) -> None:
    """The SIP call's hold/resume (re-INVITE) reaches the edge's ``on_hold``, which the
    call sets when the leg joins."""
    def forward(held: bool) -> None:
        if getattr(edge, "on_hold", None) is not None:
            edge.on_hold(held)

    sip_call.on_hold = forward
