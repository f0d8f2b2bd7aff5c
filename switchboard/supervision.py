"""Supervisors on live calls: listen, whisper, barge (Asterisk ChanSpy's spy, whisper and
barge; FreeSWITCH eavesdrop), switchable mid-call without reconnecting.

A supervisor is one more leg of the call (role ``supervisor``, never analysed), reached
over any edge: the board's WebRTC connection or a SIP phone that dialled the feature code.
Joining, changing mode and leaving only change the call's routing matrix
(:meth:`~switchboard.telephony.routing.Routing.set_supervisor`): the edge stays up, so a
switch takes effect at the mixer's next 20 ms tick.

- listen: the supervisor hears both sides (the caller, and the agent or the bot); nobody
  hears the supervisor;
- whisper: the agent hears the supervisor too, the caller does not;
- barge: the caller hears the supervisor as well: a three-way call.

Each join, switch and leave publishes :class:`SupervisorJoined` on the call's bus (mode
"" when the supervisor left). An agent bridged after the supervisor joined is routed at
once (whisper reaches them from their first frame).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass

from switchboard.pipeline.events import (
    DtmfReceived,
    Event,
    LegJoined,
    LegLeft,
    SupervisorJoined,
)
from switchboard.telephony.call import Call
from switchboard.telephony.edge import MediaEdge
from switchboard.telephony.routing import Role, SupervisorMode

log = logging.getLogger(__name__)

#: DTMF keys a SIP supervisor presses to switch modes (as ChanSpy's).
DTMF_MODES = {"4": SupervisorMode.LISTEN, "5": SupervisorMode.WHISPER,
              "6": SupervisorMode.BARGE}


class SupervisionError(LookupError):
    """No such live call, or no such supervisor on it."""


def parse_mode(value: object) -> SupervisorMode:
    """A mode from a request; :class:`ValueError` with the choices for anything else."""
    try:
        return SupervisorMode(str(value))
    except ValueError:
        choices = ", ".join(m.value for m in SupervisorMode)
        raise ValueError(f"mode must be one of {choices}") from None


@dataclass
class _Seat:
    """One supervisor on one call."""

    supervisor: str
    leg_id: str
    mode: SupervisorMode


_BY_CENTER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Supervision:
    """Supervisors' legs on the live calls of a :class:`~switchboard.callcenter.CallCenter`.

    A supervisor's leg switches mode by DTMF too (4 listen, 5 whisper, 6 barge): a SIP
    phone's keys, or the keypad of a page that sends them."""

    def __init__(self, center) -> None:
        self.center = center
        #: call id → leg id → seat.
        self._seats: dict[str, dict[str, _Seat]] = {}

    @classmethod
    def of(cls, center) -> Supervision:
        """The center's one Supervision (the board and the SIP feature code share it)."""
        supervision = _BY_CENTER.get(center)
        if supervision is None:
            supervision = _BY_CENTER[center] = cls(center)
        return supervision

    @staticmethod
    def leg_id(supervisor: str) -> str:
        return f"supervisor:{supervisor}"

    def call(self, call_id: str) -> Call:
        record = self.center.calls.get(call_id)
        if record is None or record.call.ending:
            raise SupervisionError(f"no live call {call_id}")
        return record.call

    def mode(self, call_id: str, supervisor: str) -> SupervisorMode | None:
        seat = self._seats.get(call_id, {}).get(self.leg_id(supervisor))
        return seat.mode if seat else None

    async def join(self, call_id: str, supervisor: str, edge: MediaEdge,
                   mode: SupervisorMode = SupervisorMode.LISTEN) -> str:
        """Join ``supervisor`` to the call over ``edge`` in ``mode``; returns the leg id.
        The same supervisor joining again replaces their earlier leg."""
        call = self.call(call_id)
        leg_id = self.leg_id(supervisor)
        if leg_id in call.legs and call.legs[leg_id].left_at is None:
            await call.remove_leg(leg_id, "replaced")
        seats = self._seats.get(call_id)
        if seats is None:
            seats = self._seats[call_id] = {}
            # Follow the call: an agent bridged later gets routed, a hang-up is a leave.
            call.bus.subscribe(lambda event: self._on_event(call, event))
        seats[leg_id] = _Seat(supervisor, leg_id, mode)
        call.add_leg(leg_id, Role.SUPERVISOR, edge, analyse=False)
        self._route(call, seats[leg_id])
        call.publish(SupervisorJoined(call_id=call.call_id, leg=leg_id,
                                      t_audio=call.t_audio(), supervisor=supervisor,
                                      mode=mode.value))
        return leg_id

    def set_mode(self, call_id: str, supervisor: str, mode: SupervisorMode) -> None:
        """Switch the supervisor's mode: only the routing changes, the edge stays up."""
        call = self.call(call_id)
        seat = self._seats.get(call_id, {}).get(self.leg_id(supervisor))
        if seat is None or seat.leg_id not in call.legs:
            raise SupervisionError(f"{supervisor} is not on call {call_id}")
        if seat.mode is mode:
            return
        seat.mode = mode
        self._route(call, seat)
        call.publish(SupervisorJoined(call_id=call.call_id, leg=seat.leg_id,
                                      t_audio=call.t_audio(), supervisor=supervisor,
                                      mode=mode.value))

    async def leave(self, call_id: str, supervisor: str) -> None:
        """Drop the supervisor's leg (its edge is closed: BYE, or the page's connection)."""
        call = self.call(call_id)
        leg_id = self.leg_id(supervisor)
        if leg_id not in call.legs:
            raise SupervisionError(f"{supervisor} is not on call {call_id}")
        await call.remove_leg(leg_id, "left")

    def _route(self, call: Call, seat: _Seat) -> None:
        agent = _live(call, Role.AGENT)
        caller = _live(call, Role.CALLER)
        if caller is None:
            return
        # Until an agent is bridged, the other side is the bot: a supervisor listening
        # to a bot call hears what the caller hears from it.
        if agent is None:
            call.routing.connect(seat.leg_id, "bot")
        else:
            call.routing.disconnect(seat.leg_id, "bot")
        call.routing.disconnect(caller, seat.leg_id)
        if agent is not None:
            call.routing.disconnect(agent, seat.leg_id)
        call.routing.set_supervisor(seat.leg_id, seat.mode, caller, agent)

    def _on_event(self, call: Call, event: Event) -> None:
        seats = self._seats.get(call.call_id)
        if seats is None:
            return
        if isinstance(event, DtmfReceived) and event.leg in seats:
            mode = DTMF_MODES.get(event.digit)
            if mode is not None and not call.ending:
                self.set_mode(call.call_id, seats[event.leg].supervisor, mode)
        elif isinstance(event, LegJoined) and event.role == Role.AGENT.value:
            for seat in seats.values():
                if seat.leg_id in call.legs and call.legs[seat.leg_id].left_at is None:
                    self._route(call, seat)
        elif isinstance(event, LegLeft) and event.leg in seats:
            seat = seats.pop(event.leg)
            call.publish(SupervisorJoined(call_id=call.call_id, leg=seat.leg_id,
                                          t_audio=call.t_audio(),
                                          supervisor=seat.supervisor, mode=""))
            if not seats and call.ending:
                self._seats.pop(call.call_id, None)
        elif isinstance(event, LegLeft) and event.role == Role.AGENT.value:
            for seat in seats.values():
                if seat.leg_id in call.legs and call.legs[seat.leg_id].left_at is None:
                    self._route(call, seat)
        if call.ending and not seats:
            self._seats.pop(call.call_id, None)


def _live(call: Call, role: Role) -> str | None:
    """The id of the call's live leg of ``role`` (the first, for caller and agent)."""
    for leg in call.legs.values():
        if leg.role is role and leg.left_at is None:
            return leg.id
    return None
