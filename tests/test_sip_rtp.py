"""The RTP session over real UDP sockets: audio in and out, DTMF, RTCP, hostile packets."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

import numpy as np
from aiortc.rtp import RtpPacket
from switchboard.telephony import g711
from switchboard.telephony.sip.codec import Decoder, Downsampler, Upsampler
from switchboard.telephony.sip.dtmf import TelephoneEvent, event_packets
from switchboard.telephony.sip.rtp import RtpSession
from switchboard.telephony.sip.sdp import Codec

from tests.test_sip_support import dominant_hz, free_port, listen_udp, tone_frames

PCMU = Codec(0, "PCMU", 8000)


def _sine8k(n: int, freq: float = 500.0) -> np.ndarray:
    return (8000 * np.sin(2 * np.pi * freq * np.arange(n) / 8000)).astype(np.int16)


def _packets(samples: np.ndarray, ssrc: int = 1234, seq0: int = 100, ts0: int = 0) -> list[bytes]:
    out = []
    for i in range(len(samples) // 160):
        payload = g711.ulaw_encode(samples[i * 160 : (i + 1) * 160])
        out.append(
            RtpPacket(
                payload_type=0,
                sequence_number=(seq0 + i) & 0xFFFF,
                timestamp=ts0 + 160 * i,
                ssrc=ssrc,
                payload=payload,
            ).serialize()
        )
    return out


async def _session(remote_port: int | None = None, **kw) -> RtpSession:
    s = RtpSession("127.0.0.1", **kw)
    await s.open()
    s.configure(
        codec=PCMU,
        telephone_event_pt=101,
        remote=("127.0.0.1", remote_port) if remote_port else None,
    )
    return s


def test_resampling_is_continuous_across_frames():
    up, down = Upsampler(), Downsampler()
    x = _sine8k(8000, 440)
    y = np.concatenate([up(x[i : i + 160]) for i in range(0, 8000, 160)])
    # No clicks: the largest sample-to-sample step is what a 440 Hz sine allows.
    assert np.abs(np.diff(y[100:].astype(float))).max() < 2 * np.pi * 440 / 16000 * 8000 * 1.1
    z = np.concatenate([down(y[i : i + 320]) for i in range(0, 16000, 320)])
    assert abs(dominant_hz(z, 8000) - 440) < 5


def test_shuffled_packets_come_out_in_order_as_16k_frames():
    async def main():
        s = await _session(jitter_prefetch=4)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pkts = _packets(_sine8k(160 * 50))
        rng = random.Random(1)
        # Reorder within windows of 4 (what the prefetch absorbs), duplicate a few.
        chunks = [pkts[i : i + 4] for i in range(0, len(pkts), 4)]
        for c in chunks:
            rng.shuffle(c)
        wire = [p for c in chunks for p in c] + pkts[10:13]
        for p in wire:
            tx.sendto(p, ("127.0.0.1", s.port))
        await asyncio.sleep(0.1)
        frames = [await s.receive() for _ in range(50)]
        stats = s.jitter.stats
        await s.close()
        assert await s.receive() is None
        tx.close()
        return frames, stats

    frames, stats = asyncio.run(main())
    assert all(len(f) == 640 for f in frames)
    pcm = np.frombuffer(b"".join(frames), dtype="<i2")
    expected = Decoder("PCMU").decode(
        b"".join(g711.ulaw_encode(_sine8k(160 * 50))[i : i + 160] for i in range(0, 8000, 160))
    )
    exp = np.frombuffer(expected, dtype="<i2")
    n = min(len(pcm), len(exp))
    assert np.corrcoef(pcm[:n].astype(float), exp[:n].astype(float))[0, 1] > 0.99
    assert stats.played == 50 and stats.lost == 0
    assert stats.duplicate + stats.late == 3


def test_hostile_packets_are_counted_and_the_stream_survives():
    async def main():
        s = await _session()
        digits: list[str] = []
        s.on_dtmf = digits.append
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good = _packets(_sine8k(160 * 10))
        hostile = [
            b"\x80",  # too short
            b"\x40" + good[0][1:],  # version 1
            bytes(11),
            RtpPacket(payload_type=18, sequence_number=1, ssrc=1234, payload=b"x" * 20).serialize(),
            b"\x90\x00" + good[0][2:12],  # extension bit but no extension
        ]
        rng = random.Random(7)
        hostile += [
            bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))) for _ in range(200)
        ]
        for p in hostile + good[:5]:
            tx.sendto(p, ("127.0.0.1", s.port))
        # A new SSRC (a transfer): reset, counted, and its audio still plays.
        for p in _packets(_sine8k(160 * 10), ssrc=999, seq0=40000):
            tx.sendto(p, ("127.0.0.1", s.port))
        # DTMF "4" with the end packet three times: one digit.
        for p in event_packets("4"):
            tx.sendto(
                RtpPacket(
                    payload_type=101,
                    sequence_number=40010,
                    timestamp=5000,
                    ssrc=999,
                    payload=bytes(p),
                ).serialize(),
                ("127.0.0.1", s.port),
            )
        await asyncio.sleep(0.2)
        frames = [await s.receive() for _ in range(10)]
        stats = s.stats
        await s.close()
        tx.close()
        return stats, frames, digits

    stats, frames, digits = asyncio.run(main())
    assert stats.bad_header >= 4
    assert stats.wrong_payload_type >= 1
    assert stats.ssrc_changes >= 1
    assert digits == ["4"]
    assert any(np.abs(np.frombuffer(f, dtype="<i2")).max() > 1000 for f in frames)


def test_a_stranger_cannot_cut_into_a_live_stream_but_a_new_source_replaces_a_quiet_one():
    """While the caller's stream is live, packets with another SSRC from another address
    (a stray or hostile sender on our port) are counted and not played; the caller's
    own new SSRC (a restarted phone), even reusing sequence numbers, plays at once."""

    async def main():
        s = await _session()
        caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", s.port)
        for mine, theirs in zip(_packets(_sine8k(160 * 10)),
                                _packets(_sine8k(160 * 10, 1500.0), ssrc=666), strict=True):
            caller.sendto(mine, target)
            stranger.sendto(theirs, target)
        await asyncio.sleep(0.2)
        heard = [await s.receive() for _ in range(10)]
        foreign = s.stats.foreign
        # The caller's phone restarts its stream: new SSRC, sequence numbers from 100 again.
        for p in _packets(_sine8k(160 * 10, 1000.0), ssrc=4321):
            caller.sendto(p, target)
        await asyncio.sleep(0.2)
        restarted = [await s.receive() for _ in range(10)]
        await s.close()
        caller.close()
        stranger.close()
        return heard, foreign, restarted

    heard, foreign, restarted = asyncio.run(main())
    assert foreign == 10
    pcm = np.frombuffer(b"".join(heard), dtype="<i2")
    assert abs(dominant_hz(pcm, 16000) - 500) < 20
    pcm = np.frombuffer(b"".join(restarted), dtype="<i2")
    assert np.abs(pcm).max() > 1000 and abs(dominant_hz(pcm, 16000) - 1000) < 20


def test_outbound_audio_dtmf_and_sender_reports():
    async def main():
        port = free_port()
        t1, rtp = await listen_udp(port)
        t2, rtcp = await listen_udp(port + 1)
        s = await _session(port, rtcp_interval_s=0.3)
        tone = tone_frames(600.0, n=60)
        for i in range(40):
            s.send(tone[i])
            if i == 10:
                s.send_dtmf("#")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        await s.close()
        t1.close()
        t2.close()
        return rtp.packets, rtcp.raw

    packets, reports = asyncio.run(main())
    audio = [p for p in packets if p[0] == 0]
    events = [p for p in packets if p[0] == 101]
    seqs = [p[1] for p in packets]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert len({p[2] for p in events}) == 1, "every packet of one event has its start timestamp"
    parsed = [TelephoneEvent.parse(p[4]) for p in events]
    assert {e.digit for e in parsed} == {"#"} and sum(e.end for e in parsed) == 3
    pcm = g711.ulaw_decode(b"".join(p[4] for p in audio[15:]))
    assert abs(dominant_hz(pcm, 8000) - 600) < 10
    assert any(r[1] == 200 and struct.unpack("!I", r[4:8])[0] == audio[0][3] for r in reports)


def test_hold_stops_sending_and_expecting():
    async def main():
        port = free_port()
        t1, rtp = await listen_udp(port)
        s = await _session(port)
        await asyncio.sleep(0.2)
        before = len(rtp.packets)
        s.configure(
            codec=PCMU,
            telephone_event_pt=101,
            remote=("127.0.0.1", port),
            send=False,
            receive=False,
        )
        await asyncio.sleep(0.05)
        held_at = len(rtp.packets)
        await asyncio.sleep(0.2)
        after = len(rtp.packets)
        frame = await s.receive()
        await s.close()
        t1.close()
        return before, held_at, after, frame

    before, held_at, after, frame = asyncio.run(main())
    assert before > 3 and after == held_at
    assert frame == bytes(640)


def test_audio_sent_to_us_on_hold_is_not_played_after_it():
    async def main():
        s = await _session()
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.configure(codec=PCMU, telephone_event_pt=101, remote=None, receive=False)
        for p in _packets(_sine8k(160 * 10)):  # the other side's music while we hold
            tx.sendto(p, ("127.0.0.1", s.port))
        await asyncio.sleep(0.2)
        s.configure(codec=PCMU, telephone_event_pt=101, remote=None, receive=True)
        frames = [await s.receive() for _ in range(5)]
        await s.close()
        tx.close()
        return frames

    assert asyncio.run(main()) == [bytes(640)] * 5  # nothing stale comes out on resume


def test_a_stall_does_not_become_delay_for_the_rest_of_the_call():
    """Packets that piled up during a stall are drained in the pauses (quiet packets
    dropped) back to the buffer's depth; speech is never dropped; the send queue between
    the mixer and the sender stays short."""
    from switchboard.telephony import g711
    from switchboard.telephony.sip.rtp import DRIFT_FRAMES, SEND_QUEUE_MAX, RtpSession
    from switchboard.telephony.sip.sdp import Codec

    async def main():
        session = RtpSession("127.0.0.1")
        await session.open()
        session.configure(codec=Codec(0, "PCMU", 8000), telephone_event_pt=None,
                          remote=("127.0.0.1", 9), send=False, receive=True)
        quiet = g711.ulaw_encode(np.zeros(160, np.int16))
        loud = g711.ulaw_encode((8000 * np.sin(np.arange(160) / 3)).astype(np.int16))
        # 20 quiet then 5 loud packets arrive at once (a stall), then the pace resumes.
        for seq in range(25):
            session.jitter.put(seq, quiet if seq < 20 else loud)
        depths, loud_frames = [], 0
        for _ in range(30):
            frame = np.frombuffer(session._next_frame(), "<i2")
            loud_frames += int(np.abs(frame).max() > 4000)
            depths.append(len(session.jitter))
        for _ in range(10):
            session.send(bytes(640))
        session._tick()
        out_left = len(session._out)
        await session.close()
        return session.stats, depths, loud_frames, out_left

    stats, depths, loud_frames, out_left = asyncio.run(main())
    assert stats.drained >= 10  # quiet packets went; the depth came back down
    assert min(depths[:15]) <= 3 + DRIFT_FRAMES
    assert loud_frames == 5  # every speech packet played: speech is never drained
    assert out_left <= SEND_QUEUE_MAX - 1 and stats.send_dropped >= 1


def test_an_adaptive_depth_comes_down_on_quiet_packets_only():
    """On a steady stream the jitter buffer asks for its spare packets to go (each is 20 ms
    the caller waits for every reply): the session drops them in a pause, never in
    speech, and the depth ends at the minimum."""
    quiet = g711.ulaw_encode(np.zeros(160, np.int16))
    loud = g711.ulaw_encode(_sine8k(160))

    async def main(jitter_min):
        session = await _session(jitter_prefetch=3, jitter_min=jitter_min)
        session.jitter.window = 20
        for seq in range(3):
            session.jitter.put(seq, loud)
        loud_frames, spoken_depths = 0, []
        for tick in range(120):
            seq = 3 + tick
            session.jitter.put(seq, loud if seq < 63 else quiet)
            frame = np.frombuffer(session._next_frame(), "<i2")
            loud_frames += int(np.abs(frame).max() > 4000)
            if seq < 63:
                spoken_depths.append(len(session.jitter))
        await session.close()
        return session, loud_frames, spoken_depths

    session, loud_frames, spoken_depths = asyncio.run(main(1))
    fixed, fixed_loud, _ = asyncio.run(main(None))
    assert loud_frames == fixed_loud >= 63  # every speech packet played
    assert fixed.jitter.prefetch == 3 and fixed.stats.drained == 0
    assert session.jitter.prefetch == 1 and session.jitter.shed == 0
    assert session.stats.drained == 2 and len(session.jitter) == 1  # from 3 held
    assert min(spoken_depths) == 3  # while speech went on, the spare packets stayed


def test_a_packet_is_shed_only_while_one_is_spare():
    """Shedding the only packet held would leave the next pull with nothing: an underrun,
    which the buffer would take for a late packet and deepen again."""
    quiet = g711.ulaw_encode(np.zeros(160, np.int16))

    async def main():
        session = await _session(jitter_prefetch=1, jitter_min=1)
        session.jitter.shed = 1
        session.jitter.put(0, quiet)
        session._next_frame()
        session.jitter.put(1, quiet)
        session._next_frame()
        await session.close()
        return session

    session = asyncio.run(main())
    assert session.stats.drained == 0 and session.jitter.shed == 1
    assert session.jitter.stats.deepened == 0 and session.jitter.stats.played == 2
