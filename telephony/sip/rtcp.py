"""RTCP (RFC 3550 section 6): receiver statistics and the sender reports we send.

Packets are aiortc's :mod:`aiortc.rtp` classes; this module keeps the counts they carry.
"""

from __future__ import annotations

from aiortc.clock import current_ntp_time
from aiortc.rtp import RtcpReceiverInfo, RtcpSenderInfo, RtcpSrPacket

#: Seconds between our sender reports (RFC 3550 suggests 5 s minimum for small sessions).
REPORT_INTERVAL_S = 5.0


class ReceiverStats:
    """Loss and interarrival jitter of the stream we receive (RFC 3550 A.3 and A.8)."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.received = 0
        self._base: int | None = None
        self._highest = 0  # extended
        self._transit: float | None = None
        self.jitter = 0.0
        self._expected_prior = 0
        self._received_prior = 0
        self.last_sr_ntp_mid = 0  # middle 32 bits of the last SR's NTP time (for LSR)
        self.last_sr_at: float | None = None

    def reset(self, ssrc: int) -> None:
        """A new source: counts start again."""
        self.__init__(self.clock_rate)
        self.ssrc = ssrc

    def add(self, seq: int, timestamp: int, arrival_s: float) -> None:
        """Account one received packet (arrival on a monotonic clock, in seconds)."""
        if self._base is None:
            self._base = self._highest = seq
        else:
            cycles = self._highest & ~0xFFFF
            ext = cycles | seq
            if ext < self._highest - 0x8000:
                ext += 0x10000
            elif ext > self._highest + 0x8000:
                ext -= 0x10000
            self._highest = max(self._highest, ext)
        self.received += 1
        transit = arrival_s * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    @property
    def expected(self) -> int:
        """Packets the sequence numbers say were sent."""
        return 0 if self._base is None else self._highest - self._base + 1

    @property
    def lost(self) -> int:
        """Cumulative loss (may be negative with duplicates, as RFC 3550 allows)."""
        return self.expected - self.received

    def report(self, now_s: float) -> RtcpReceiverInfo | None:
        """A report block for our next SR, or None before the first packet."""
        if self.ssrc is None or self._base is None:
            return None
        expected_interval = self.expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        dlsr = 0
        if self.last_sr_at is not None:
            dlsr = int((now_s - self.last_sr_at) * 65536)
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=max(0, min(self.lost, 0x7FFFFF)),
            highest_sequence=self._highest & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=self.last_sr_ntp_mid,
            dlsr=dlsr,
        )


def sender_report(
    *, ssrc: int, rtp_timestamp: int, packets: int, octets: int, block: RtcpReceiverInfo | None
) -> bytes:
    """One SR packet: our NTP time, the RTP time it matches, our counts, their report."""
    info = RtcpSenderInfo(
        ntp_timestamp=current_ntp_time(),
        rtp_timestamp=rtp_timestamp & 0xFFFFFFFF,
        packet_count=packets & 0xFFFFFFFF,
        octet_count=octets & 0xFFFFFFFF,
    )
    return bytes(RtcpSrPacket(ssrc=ssrc, sender_info=info, reports=[block] if block else []))
