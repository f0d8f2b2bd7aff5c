"""A browser (or any WebRTC peer) as a call party, on aiortc.

Signalling is one HTTP exchange, as pipecat's SmallWebRTC does it: the page posts its SDP
offer (ICE candidates gathered, no trickle) and gets the answer back. :func:`answer`
checks the offer, builds the peer connection and returns the :class:`WebRtcEdge`, the
:class:`~switchboard.telephony.edge.MediaEdge` of that connection.

Audio is Opus at 48 kHz on the wire; the edge converts at its border: decoded 48 kHz
frames are resampled to the call's 16 kHz mono 20 ms frames (PyAV's resampler keeps its
filter state across frames), and our 16 kHz frames go to aiortc's Opus encoder, which
resamples them to 48 kHz itself. A data channel named ``events`` (opened by the page)
carries JSON both ways: to the page, the call's transcript of what the bot heard and its
end; from the page, DTMF key presses (aiortc drops RFC 4733 ``telephone-event``).

No STUN or TURN server is configured (Switchboard runs offline): host candidates only,
so a browser reaches the server where it can route to it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
    sdp,
)
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from switchboard.telephony.edge import FRAME_BYTES, SILENCE
from switchboard.telephony.paced import PacedFrames

log = logging.getLogger(__name__)

RATE = 16000
SAMPLES = FRAME_BYTES // 2
#: Longest call a reader serves (its loop's bound): 8 hours of frames.
MAX_FRAMES = 8 * 3600 * 50
#: Outbound frames held for aiortc's sender; more means the sender fell behind.
OUT_BACKLOG = 2
#: Largest offer accepted (a browser's is 3-6 kB).
MAX_OFFER = 64 * 1024
DIGITS = set("0123456789*#ABCD")


class OfferError(ValueError):
    """An offer we cannot answer (broken SDP, no audio, no common codec)."""


class OutboundTrack(MediaStreamTrack):
    """Our audio toward the peer: each frame the call's mixer sends, as soon as it comes.

    aiortc's sender asks for the next frame as soon as it has sent one; the mixer's 20 ms
    tick paces it. Without a tick for ``GAP_S`` (the call not started yet, a stalled loop)
    silence goes out so the stream's timestamps keep time; a backlog beyond
    ``OUT_BACKLOG`` frames is dropped from the oldest, so nothing is heard late.
    """

    kind = "audio"
    GAP_S = 0.06

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[bytes] = asyncio.Queue(OUT_BACKLOG)
        self._pts = 0

    def push(self, pcm: bytes) -> None:
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(pcm)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            pcm = await asyncio.wait_for(self._frames.get(), self.GAP_S)
        except TimeoutError:
            pcm = SILENCE
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += SAMPLES
        return frame


class WebRtcEdge:
    """One peer connection's audio, as the call's party."""

    def __init__(self, pc: RTCPeerConnection, peer: str = "webrtc:",
                 media_timeout_s: float = 10.0):
        self.pc = pc
        self.peer = peer
        self.media_timeout_s = media_timeout_s
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_hold: Callable[[bool], None] | None = None
        self.outbound = OutboundTrack()
        self.channel: RTCDataChannel | None = None
        # Messages for the page before its channel opens (it opens after DTLS).
        self._unsent: deque[str] = deque(maxlen=100)
        #: Why the connection ended ("closed", "no media", "ice failed", our reason).
        self.ended: str | None = None
        self.frames_in = 0
        self._clock_rate = 0  # the RTP clock: the decoded audio's rate (48 kHz Opus, 8 kHz G.711)
        self._rtp: dict[str, Any] = {}  # the connection's counters, taken at the close
        self._in = PacedFrames(50)
        self._connected = asyncio.Event()
        self._failed = asyncio.Event()
        self._reader: asyncio.Task | None = None
        pc.on("connectionstatechange", self._state_changed)
        pc.on("track", self._track)
        pc.on("datachannel", self._datachannel)

    # --- the connection

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._failed.set()
            self._gone("ice failed" if state == "failed" else "closed")

    async def wait_connected(self, timeout: float) -> bool:
        """True once ICE and DTLS are up; False if they fail or ``timeout`` passes."""
        connected = asyncio.ensure_future(self._connected.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({connected, failed}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            failed.cancel()
        return self._connected.is_set() and not self._failed.is_set()

    def _track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(
                self._read(track), name="webrtc:read")

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        pcm = bytearray()
        reason = "closed"
        try:
            for _ in range(MAX_FRAMES):
                frame = await asyncio.wait_for(track.recv(), self.media_timeout_s)
                self._clock_rate = frame.sample_rate
                for out in resampler.resample(frame):
                    pcm += out.to_ndarray().tobytes()
                while len(pcm) >= FRAME_BYTES:
                    self._in.push(bytes(pcm[:FRAME_BYTES]))
                    del pcm[:FRAME_BYTES]
                    self.frames_in += 1
        except TimeoutError:
            reason = "no media"  # the peer vanished without a word (or muted its stack)
        except MediaStreamError:
            reason = "closed"
        except Exception as exc:  # noqa: BLE001 - an undecodable stream is a party gone
            log.warning("webrtc %s: reading audio failed: %s", self.peer, exc)
            reason = f"audio failed: {exc}"
        self._gone(reason)

    def _datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "events":
            return
        self.channel = channel
        channel.on("message", self._message)
        while self._unsent and channel.readyState == "open":
            channel.send(self._unsent.popleft())

    def _message(self, message: str | bytes) -> None:
        # Only key presses come from the page; anything else is ignored (bounded size).
        if not isinstance(message, str) or len(message) > 256:
            return
        try:
            body = json.loads(message)
        except ValueError:
            return
        digit = body.get("dtmf") if isinstance(body, dict) else None
        if isinstance(digit, str) and digit in DIGITS and self.on_dtmf is not None:
            self.on_dtmf(digit)

    def notify(self, message: dict) -> None:
        """Send ``message`` to the page over the ``events`` channel (kept until it opens)."""
        channel = self.channel
        if channel is None:
            self._unsent.append(json.dumps(message))
        elif channel.readyState == "open":
            try:
                channel.send(json.dumps(message))
            except Exception:  # noqa: BLE001 - a closing channel loses the message
                log.debug("webrtc %s: event not sent", self.peer)

    def _gone(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._in.end()

    async def wait_ended(self) -> None:
        """Return once the connection has ended (either side)."""
        await self._in.wait_ended()

    # --- the MediaEdge seam

    async def receive(self) -> bytes | None:
        return await self._in.pop()

    def send(self, pcm: bytes) -> None:
        if self.ended is None:
            self.outbound.push(pcm)

    def media_stats(self) -> dict[str, Any]:
        """How the connection's media went, for the call record: our frames and aiortc's
        RTP counters as they stood at the close (empty if it was closed first)."""
        return {"frames_in": self.frames_in, "dropped": self._in.dropped, "rtp": dict(self._rtp)}

    async def _take_stats(self) -> None:
        # aiortc's counters are only readable (async) while the connection is open.
        try:
            report = await asyncio.wait_for(self.pc.getStats(), 1.0)
        except Exception:  # noqa: BLE001 - counters are worth less than a clean close
            return
        for stats in report.values():
            if stats.type == "inbound-rtp":
                self._rtp.update(received=stats.packetsReceived, lost=stats.packetsLost)
                if self._clock_rate:
                    self._rtp["interarrival_jitter_ms"] = round(
                        1000 * stats.jitter / self._clock_rate, 2)
            elif stats.type == "outbound-rtp":
                self._rtp["sent"] = stats.packetsSent
            elif stats.type == "remote-inbound-rtp":  # the peer's receiver report
                self._rtp.update(peer_lost=stats.packetsLost,
                                 round_trip_ms=round(1000 * stats.roundTripTime, 1))

    async def close(self, reason: str) -> None:
        """Tell the page why, then close the connection (idempotent)."""
        if self.ended is None:
            self.notify({"kind": "ended", "reason": reason})
            await asyncio.sleep(0.05)  # let the data channel carry it before DTLS closes
        if self.pc.connectionState != "closed" and not self._rtp:
            await self._take_stats()
        self._gone(reason)
        self.outbound.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 5.0)
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


def short_jitter_buffer(receiver) -> None:
    """Hold one frame, not aiortc's four, before decoding the peer's audio.

    aiortc releases an audio frame only once the four after it have arrived: 80 ms on
    every turn, on top of the call's own pacing (:class:`PacedFrames` already smooths
    bursts and a late frame is dropped either way). One frame of look-ahead is the least
    its buffer can do (a frame is known complete when the next one starts). The buffer is
    a private attribute of aiortc 1.15's receiver; another version keeps its own.
    """
    attribute = "_RTCRtpReceiver__jitter_buffer"
    if getattr(receiver, "_RTCRtpReceiver__kind", "audio") == "audio" and hasattr(
            receiver, attribute):
        setattr(receiver, attribute, JitterBuffer(capacity=16, prefetch=1))


async def answer(offer_sdp: str, offer_type: str = "offer", peer: str = "webrtc:",
                 media_timeout_s: float = 10.0) -> tuple[WebRtcEdge, RTCSessionDescription]:
    """Answer a peer's offer: its edge and our answer; :class:`OfferError` if we cannot."""
    if offer_type != "offer":
        raise OfferError(f"expected an SDP offer, got {offer_type!r}")
    if not isinstance(offer_sdp, str) or not offer_sdp.strip():
        raise OfferError("empty SDP")
    if len(offer_sdp) > MAX_OFFER:
        raise OfferError("SDP offer too large")
    try:
        parsed = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # noqa: BLE001 - aiortc's parser raises whatever it hits
        raise OfferError(f"broken SDP: {type(exc).__name__}: {exc}") from None
    audio = [m for m in parsed.media if m.kind == "audio"]
    if not audio:
        raise OfferError("the offer has no audio")
    if not any(c.mimeType.lower() in ("audio/opus", "audio/pcmu", "audio/pcma")
               for m in audio for c in m.rtp.codecs):
        raise OfferError("no common audio codec (Opus, PCMU or PCMA)")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    edge = WebRtcEdge(pc, peer, media_timeout_s)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for receiver in pc.getReceivers():
            short_jitter_buffer(receiver)
        pc.addTrack(edge.outbound)  # takes the offer's audio transceiver
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # noqa: BLE001 - aiortc refuses offers in many ways
        await pc.close()
        raise OfferError(f"cannot answer the offer: {type(exc).__name__}: {exc}") from None
    return edge, pc.localDescription
