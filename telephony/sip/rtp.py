"""One call's RTP session (RFC 3550): G.711 audio and RFC 4733 events over UDP.

Inbound packets go through checks (header, SSRC, payload type), a :class:`JitterBuffer`
and the G.711 decoder to 16 kHz 20 ms frames that :meth:`RtpSession.receive` plays out
at a 20 ms pace. Outbound frames queued by :meth:`RtpSession.send` are encoded and sent
every 20 ms by one task, which also sends DTMF events and an RTCP sender report every
~5 s. Nothing a peer sends can raise out of here: bad packets are counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from aiortc.rtp import RtcpPacket, RtcpSrPacket, RtpPacket
from switchboard.telephony.edge import FRAME_BYTES, SILENCE
from switchboard.telephony.sip import rtcp
from switchboard.telephony.sip.codec import Decoder, Encoder
from switchboard.telephony.sip.dtmf import DtmfReceiver, TelephoneEvent, event_packets
from switchboard.telephony.sip.jitterbuffer import LOST, JitterBuffer
from switchboard.telephony.sip.sdp import Codec

logger = logging.getLogger(__name__)

FRAME_S = 0.020
SAMPLES_8K = 160  # one 20 ms packet at 8 kHz
#: A consumer or sender this far behind is resynchronised instead of catching up in a burst.
MAX_LAG_S = 0.2
#: A stream silent this long may be replaced by a sender at another address (a re-INVITE's
#: new media, a phone behind a NAT that moved); a live one may not.
SOURCE_SILENT_S = 1.0
#: After a stall the jitter buffer holds the audio that arrived meanwhile; more than this
#: many packets over its prefetch depth is drained, one quiet packet per tick, so a
#: stall does not become delay for the rest of the call.
DRIFT_FRAMES = 2
#: Below this RMS (int16) a packet is a pause, safe to drop while draining (-40 dBFS).
QUIET_RMS = 330.0
#: Frames between the mixer's tick and ours: two clocks of 20 ms never quite agree, but
#: more than this is a backlog (a stall) that would delay everything after it.
SEND_QUEUE_MAX = 2


@dataclass
class RtpStats:
    """What happened on the wire, for the call record and the tests."""

    received: int = 0
    bad_header: int = 0
    wrong_payload_type: int = 0
    ssrc_changes: int = 0
    foreign: int = 0  # audio from another source while ours was live: dropped
    drained: int = 0  # quiet packets dropped to bring a late stream back to its depth
    send_dropped: int = 0  # outbound frames dropped to keep the send queue short
    dtmf: int = 0
    sent: int = 0
    sent_octets: int = 0
    rtcp_sent: int = 0
    rtcp_received: int = 0
    bad_rtcp: int = 0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handler: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._handler(data, addr)
        except Exception:  # a packet must never take the session down
            logger.exception("RTP packet handling failed")

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: not fatal to the call.
        logger.debug("RTP socket error: %s", exc)


def _bind_pair(host: str, attempts: int = 50) -> tuple[socket.socket, socket.socket]:
    """An even RTP port and RTCP on the next one (RFC 3550 section 11)."""
    for _ in range(attempts):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((host, 0))
        port = probe.getsockname()[1] & ~1
        probe.close()
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtcp_sock.bind((host, port + 1))
        except OSError:
            rtp.close()
            rtcp_sock.close()
            continue
        return rtp, rtcp_sock
    raise OSError(f"no free RTP/RTCP port pair on {host} after {attempts} attempts")


class RtpSession:
    """The media of one call: bind with :meth:`open`, aim with :meth:`configure`."""

    def __init__(
        self,
        host: str,
        *,
        jitter_prefetch: int = 3,
        jitter_capacity: int = 50,
        jitter_min: int | None = None,
        jitter_max: int = 8,
        send_queue_frames: int = 10,
        rtcp_interval_s: float = rtcp.REPORT_INTERVAL_S,
    ) -> None:
        self.host = host
        self.port = 0
        self.stats = RtpStats()
        self.jitter = JitterBuffer(prefetch=jitter_prefetch, capacity=jitter_capacity,
                                   min_prefetch=jitter_min, max_prefetch=jitter_max)
        self.receiver_stats = rtcp.ReceiverStats()
        #: Called with each digit received (RFC 4733), on the event loop.
        self.on_dtmf: Callable[[str], None] | None = None
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.sending = False
        self.receiving = True
        self.rtcp_interval_s = rtcp_interval_s
        self._codec: Codec | None = None
        self._te_pt: int | None = None
        self._decoder: Decoder | None = None
        self._encoder: Encoder | None = None
        self._dtmf_in = DtmfReceiver()
        self._remote_ssrc: int | None = None
        self._source_addr: tuple[str, int] | None = None
        self._last_audio_at = float("-inf")
        self._pcm = bytearray()
        self._last_samples = SAMPLES_8K
        self._out: deque[bytes] = deque(maxlen=send_queue_frames)
        self._dtmf_out: deque[str] = deque(maxlen=32)
        self._event: list[TelephoneEvent] = []
        self._event_ts = 0
        self._event_first = False
        self._dtmf_ms = 100
        self._ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self._marker = True
        self._deadline: float | None = None
        self._closed = asyncio.Event()
        self._rtp_proto: _Protocol | None = None
        self._rtcp_proto: _Protocol | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def codec(self) -> Codec | None:
        """The negotiated audio codec, once configured."""
        return self._codec

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: receive() returns None from then on."""
        return self._closed.is_set()

    async def open(self) -> int:
        """Bind the RTP/RTCP pair and start the 20 ms sender; returns the RTP port."""
        loop = asyncio.get_running_loop()
        rtp_sock, rtcp_sock = _bind_pair(self.host)
        self.port = rtp_sock.getsockname()[1]
        _, self._rtp_proto = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._on_rtp), sock=rtp_sock
        )
        _, self._rtcp_proto = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._on_rtcp), sock=rtcp_sock
        )
        self._task = asyncio.create_task(self._send_loop(), name=f"rtp-send-{self.port}")
        return self.port

    def configure(
        self,
        *,
        codec: Codec,
        telephone_event_pt: int | None,
        remote: tuple[str, int] | None,
        remote_rtcp_port: int | None = None,
        send: bool = True,
        receive: bool = True,
    ) -> None:
        """Apply an offer/answer outcome (the first one, or a re-INVITE's)."""
        if self._codec is None or codec.name != self._codec.name:
            self._decoder = Decoder(codec.name)
            self._encoder = Encoder(codec.name)
        self._codec = codec
        self._te_pt = telephone_event_pt
        # Port 0 or the RFC 2543 hold address 0.0.0.0: the peer wants nothing from us.
        if remote is None or remote[1] == 0 or remote[0] == "0.0.0.0":
            self.remote = None
            self.remote_rtcp = None
        else:
            self.remote = remote
            self.remote_rtcp = (remote[0], remote_rtcp_port or remote[1] + 1)
        self.sending = send and self.remote is not None
        if self.receiving and not receive:
            self.jitter.reset()  # on hold: what is buffered is stale by the time we resume
            self._pcm.clear()
        self.receiving = receive

    # -- the MediaEdge side -------------------------------------------------------------

    async def receive(self) -> bytes | None:
        """The next 20 ms at 16 kHz, paced at 20 ms; None once closed."""
        if self.closed:
            return None
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._deadline is None or now - self._deadline > MAX_LAG_S:
            self._deadline = now
        self._deadline += FRAME_S
        delay = self._deadline - now
        if delay > 0:
            await asyncio.sleep(delay)
        if self.closed:
            return None
        return self._next_frame()

    def send(self, pcm: bytes) -> None:
        """Queue one 20 ms frame; the oldest is dropped when the queue is full."""
        if len(pcm) != FRAME_BYTES:
            pcm = (bytes(pcm) + SILENCE)[:FRAME_BYTES]
        self._out.append(bytes(pcm))

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Queue digits as RFC 4733 events (ValueError for a non-digit)."""
        for d in digits:
            event_packets(d)  # validate now rather than in the sender task
            self._dtmf_out.append(d)
        self._dtmf_ms = duration_ms

    def media_stats(self) -> dict[str, Any]:
        """How the call's media went, for its record: the RTP counters, the jitter buffer's
        (and the depth it ended at), and the interarrival jitter (RFC 3550) in ms."""
        return {"rtp": asdict(self.stats),
                "jitter_buffer": asdict(self.jitter.stats) | {"depth": self.jitter.prefetch},
                "interarrival_jitter_ms": round(
                    1000 * self.receiver_stats.jitter / self.receiver_stats.clock_rate, 2)}

    async def close(self) -> None:
        """Stop sending and receiving; idempotent."""
        if self.closed:
            return
        self._closed.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for proto in (self._rtp_proto, self._rtcp_proto):
            if proto is not None and proto.transport is not None:
                proto.transport.close()

    # -- inbound -----------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            self.stats.bad_header += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self.stats.bad_header += 1
            return
        pt = packet.payload_type
        now = asyncio.get_running_loop().time()
        if self._te_pt is not None and pt == self._te_pt:
            # Key presses may come from their own stream (a pcap player, a gateway): they
            # never disturb the audio stream's state.
            self._dtmf(packet)
            return
        if self._remote_ssrc != packet.ssrc:
            if self._remote_ssrc is not None:
                live = now - self._last_audio_at < SOURCE_SILENT_S
                if live and addr != self._source_addr:
                    # Another sender cutting into a live stream (a stray or hostile packet
                    # on our port): the call keeps the source it has.
                    self.stats.foreign += 1
                    return
                # A new source (a transfer, a restarted phone): its numbering is unrelated.
                self.stats.ssrc_changes += 1
                self.jitter.reset()
                self._pcm.clear()
            self._remote_ssrc = packet.ssrc
            self._source_addr = addr
            self.receiver_stats.reset(packet.ssrc)
        if self._codec is not None and pt == self._codec.pt:
            self.stats.received += 1
            self._last_audio_at = now
            self.receiver_stats.add(packet.sequence_number, packet.timestamp, now)
            if self.receiving and packet.payload:
                self.jitter.put(packet.sequence_number, packet.payload)
        else:
            self.stats.wrong_payload_type += 1

    def _dtmf(self, packet: RtpPacket) -> None:
        self.stats.received += 1
        for digit in self._dtmf_in.feed(packet.timestamp, packet.payload):
            self.stats.dtmf += 1
            if self.on_dtmf is not None:
                try:
                    self.on_dtmf(digit)
                except Exception:
                    logger.exception("on_dtmf callback failed")

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except (ValueError, IndexError, KeyError):
            self.stats.bad_rtcp += 1
            return
        self.stats.rtcp_received += 1
        for p in packets:
            if isinstance(p, RtcpSrPacket):
                self.receiver_stats.last_sr_ntp_mid = (
                    p.sender_info.ntp_timestamp >> 16
                ) & 0xFFFFFFFF
                self.receiver_stats.last_sr_at = asyncio.get_running_loop().time()

    def _next_frame(self) -> bytes:
        if not self.receiving or self._decoder is None:
            return SILENCE
        depth, held = self.jitter.prefetch, len(self.jitter)
        # A packet is shed only while one is spare: shedding the last would be an underrun.
        late = held > depth + DRIFT_FRAMES or (self.jitter.shed > 0 and held > depth)
        if late and len(self._pcm) < FRAME_BYTES:
            self._drain_one()
        while len(self._pcm) < FRAME_BYTES:
            item = self.jitter.pop()
            if item is None:
                break
            if item is LOST:
                self._pcm += self._decoder.silence(self._last_samples)
            else:
                assert isinstance(item, bytes)
                self._last_samples = len(item)
                self._pcm += self._decoder.decode(item)
        if len(self._pcm) < FRAME_BYTES:
            # Underrun: pad the partial frame with silence and keep the pace.
            frame = bytes(self._pcm) + SILENCE[len(self._pcm) :]
            self._pcm.clear()
            return frame
        frame = bytes(self._pcm[:FRAME_BYTES])
        del self._pcm[:FRAME_BYTES]
        return frame

    def _drain_one(self) -> None:
        """Drop the next packet if it is quiet (one the jitter buffer asked to shed, or
        over its depth after a stall); else play it as usual."""
        item = self.jitter.pop()
        if not isinstance(item, bytes):
            return
        assert self._decoder is not None
        self._last_samples = len(item)
        pcm = self._decoder.decode(item)
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        if samples.size and float(np.sqrt(np.mean(samples * samples))) < QUIET_RMS:
            self.stats.drained += 1
            self.jitter.shed = max(0, self.jitter.shed - 1)
        else:
            self._pcm += pcm

    # -- outbound ----------------------------------------------------------------------

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        next_report = next_t + self.rtcp_interval_s
        while True:
            next_t += FRAME_S
            delay = next_t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LAG_S:
                next_t = loop.time()
            try:
                self._tick()
                if loop.time() >= next_report:
                    next_report = loop.time() + self.rtcp_interval_s
                    self._send_report()
            except Exception:  # one bad tick must not silence the rest of the call
                logger.exception("RTP send tick failed")

    def _tick(self) -> None:
        while len(self._out) > SEND_QUEUE_MAX:
            self._out.popleft()
            self.stats.send_dropped += 1
        frame = self._out.popleft() if self._out else SILENCE
        if not self._event and self._dtmf_out and self._te_pt is not None:
            self._event = event_packets(self._dtmf_out.popleft(), self._dtmf_ms)
            self._event_ts = self._ts
            self._event_first = True
        if self._event:
            ev = self._event.pop(0)
            # Every packet of an event carries the event's start time; our clock runs on.
            self._transmit(self._te_pt or 101, self._event_ts, bytes(ev), marker=self._event_first)
            self._event_first = False
            self._ts += SAMPLES_8K
            if not self._event:
                self._marker = True
            return
        if self._codec is None or self._encoder is None:
            self._ts += SAMPLES_8K
            return
        if self.sending:
            self._transmit(
                self._codec.pt, self._ts, self._encoder.encode(frame), marker=self._marker
            )
            self._marker = False
        self._ts += SAMPLES_8K

    def _transmit(self, pt: int, ts: int, payload: bytes, *, marker: bool) -> None:
        if not self.sending or self.remote is None or self._rtp_proto is None:
            return
        transport = self._rtp_proto.transport
        if transport is None:
            return
        packet = RtpPacket(
            payload_type=pt,
            marker=int(marker),
            sequence_number=self._seq,
            timestamp=ts & 0xFFFFFFFF,
            ssrc=self._ssrc,
            payload=payload,
        )
        transport.sendto(packet.serialize(), self.remote)
        self._seq = (self._seq + 1) & 0xFFFF
        self.stats.sent += 1
        self.stats.sent_octets += len(payload)

    def _send_report(self) -> None:
        if (
            self.remote_rtcp is None
            or self._rtcp_proto is None
            or self._rtcp_proto.transport is None
        ):
            return
        block = self.receiver_stats.report(asyncio.get_running_loop().time())
        data = rtcp.sender_report(
            ssrc=self._ssrc,
            rtp_timestamp=self._ts,
            packets=self.stats.sent,
            octets=self.stats.sent_octets,
            block=block,
        )
        self._rtcp_proto.transport.sendto(data, self.remote_rtcp)
        self.stats.rtcp_sent += 1
