"""SDP offer/answer (RFC 3264) for one audio stream: PCMU, PCMA and telephone-event.

Parsing reuses :mod:`aiortc.sdp`; what it leaves out for plain telephony (static payload
types without ``a=rtpmap``, a missing ``c=`` per media, its asserts on bad input) is
handled here, so a bad body becomes :class:`SdpError` (400) and no common codec becomes
:class:`NoCommonCodec` (488).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiortc import sdp as aiosdp

#: Static RTP payload types (RFC 3551) that may appear without an ``a=rtpmap``.
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
#: The codecs we speak, in our order of preference.
SUPPORTED = ("PCMU", "PCMA")
DEFAULT_TELEPHONE_EVENT_PT = 101
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class SdpError(ValueError):
    """The body is not SDP we can read (answered with 400)."""


class NoCommonCodec(SdpError):
    """The offer has no codec we speak (answered with 488)."""


@dataclass(frozen=True)
class Codec:
    """One payload type as offered: number, encoding name, clock rate."""

    pt: int
    name: str
    rate: int


@dataclass
class MediaDescription:
    """The audio stream of a session description, reduced to what the call needs."""

    host: str
    port: int
    codecs: list[Codec] = field(default_factory=list)
    direction: str = "sendrecv"
    rtcp_port: int | None = None
    ptime_ms: int | None = None

    @property
    def telephone_event_pt(self) -> int | None:
        """The payload type the peer uses for RFC 4733 events, if it offered them."""
        for codec in self.codecs:
            if codec.name.lower() == "telephone-event" and codec.rate == 8000:
                return codec.pt
        return None

    @property
    def sends(self) -> bool:
        """Whether the author of this description will send audio."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """Whether the author of this description wants audio."""
        return self.direction in ("sendrecv", "recvonly")


@dataclass(frozen=True)
class Negotiated:
    """The outcome of offer/answer: the one audio codec and the event payload type."""

    codec: Codec
    telephone_event_pt: int | None


def parse(text: str) -> MediaDescription:
    """The first audio stream of ``text``; :class:`SdpError` when there is none usable."""
    try:
        session = aiosdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc asserts and indexes freely on bad input
        raise SdpError(f"unreadable SDP: {exc!r}") from exc
    for media in session.media:
        if media.kind != "audio":
            continue
        host = media.host or session.host
        if not host:
            raise SdpError("no connection address (c=)")
        by_pt = {c.payloadType: c for c in media.rtp.codecs}
        codecs: list[Codec] = []
        for pt in media.fmt:
            if pt in by_pt:
                c = by_pt[pt]
                codecs.append(Codec(pt, c.mimeType.split("/", 1)[1], c.clockRate))
            elif pt in STATIC_PAYLOADS:
                name, rate = STATIC_PAYLOADS[pt]
                codecs.append(Codec(pt, name, rate))
        direction = media.direction or _session_direction(text)
        return MediaDescription(
            host=host,
            port=media.port,
            codecs=codecs,
            direction=direction,
            rtcp_port=media.rtcp_port,
            ptime_ms=_ptime(text),
        )
    raise SdpError("no audio stream (m=audio)")


def negotiate(offer: MediaDescription, supported: tuple[str, ...] = SUPPORTED) -> Negotiated:
    """Pick the offerer's most preferred codec that we speak (RFC 3264 section 6.1)."""
    for codec in offer.codecs:
        if codec.name.upper() in supported and codec.rate == 8000:
            return Negotiated(codec=codec, telephone_event_pt=offer.telephone_event_pt)
    raise NoCommonCodec("no common codec in " + ", ".join(c.name for c in offer.codecs))


def answer_direction(offer_direction: str) -> str:
    """Our direction for an offer's direction (sendonly is answered recvonly, ...)."""
    return _ANSWER_DIRECTION.get(offer_direction, "sendrecv")


def build(
    *,
    host: str,
    port: int,
    codecs: list[Codec],
    direction: str = "sendrecv",
    session_id: int | None = None,
    version: int = 1,
) -> str:
    """An SDP body for one audio stream (an offer lists several codecs, an answer one)."""
    sid = session_id if session_id is not None else int(time.time())
    lines = [
        "v=0",
        f"o=switchboard {sid} {version} IN IP4 {host}",
        "s=switchboard",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(str(c.pt) for c in codecs)}",
    ]
    for c in codecs:
        lines.append(f"a=rtpmap:{c.pt} {c.name}/{c.rate}")
        if c.name.lower() == "telephone-event":
            lines.append(f"a=fmtp:{c.pt} 0-16")
    lines += ["a=ptime:20", f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


def offer_codecs(telephone_event_pt: int = DEFAULT_TELEPHONE_EVENT_PT) -> list[Codec]:
    """What we offer when we dial: PCMU, PCMA, telephone-event."""
    return [
        Codec(0, "PCMU", 8000),
        Codec(8, "PCMA", 8000),
        Codec(telephone_event_pt, "telephone-event", 8000),
    ]


def answer_codecs(negotiated: Negotiated) -> list[Codec]:
    """The payload types an answer lists: the chosen codec and, if offered, events."""
    codecs = [negotiated.codec]
    if negotiated.telephone_event_pt is not None:
        codecs.append(Codec(negotiated.telephone_event_pt, "telephone-event", 8000))
    return codecs


def _session_direction(text: str) -> str:
    # aiortc keeps only media-level directions; a session-level one applies to all media.
    for line in text.splitlines():
        if line.startswith("m="):
            break
        if line.startswith("a=") and line[2:].strip() in DIRECTIONS:
            return line[2:].strip()
    return "sendrecv"


def _ptime(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("a=ptime:"):
            try:
                return int(float(line[8:].strip()))
            except ValueError:
                return None
    return None
