"""The seam between a call and the outside world: a party's audio connection.

Every way a party reaches a call (SIP/RTP, WebRTC, a carrier's media-stream WebSocket, a
recording, the desk microphone) is a :class:`MediaEdge`. Codecs, sample rates, packet
timing and signalling stay inside the edge; the call only ever sees 20 ms frames of
16 kHz mono signed 16-bit little-endian PCM (640 bytes), in and out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: One internal frame: 20 ms of 16 kHz mono PCM16.
FRAME_BYTES = 640
SILENCE = bytes(FRAME_BYTES)


class MediaEdge(Protocol):
    """One party's audio connection, as the call sees it.

    ``receive`` paces the inbound side (a jitter buffer plays out one frame per 20 ms; a
    recording is read in real time); the call's mixer paces the outbound side by calling
    ``send`` once per 20 ms tick. ``on_dtmf`` is set by the call before audio flows.
    An edge may also have ``media_stats() -> dict``: how its media went (packets lost,
    late, dropped...), which the call puts in the leg's ``LegLeft`` event, so the record
    of a bad call says what the line did.
    """

    #: Where the party is, for the record ("sip:alice@127.0.0.1:5062", "file:x.wav").
    peer: str
    #: Called with each DTMF digit the party presses ("0"-"9", "*", "#", "A"-"D").
    on_dtmf: Callable[[str], None] | None
    #: Called with True when the party puts the call on hold (a SIP re-INVITE with
    #: sendonly/inactive), False when they resume. Edges without hold never call it.
    on_hold: Callable[[bool], None] | None

    async def receive(self) -> bytes | None:
        """The party's next 20 ms frame; None once the party has gone (hang-up, end)."""
        ...

    def send(self, pcm: bytes) -> None:
        """Queue 20 ms toward the party; never blocks (a slow party loses audio)."""
        ...

    async def close(self, reason: str) -> None:
        """End the connection from our side (a BYE, a closed socket); idempotent."""
        ...
