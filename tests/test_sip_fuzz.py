"""Fuzzing the live server: 600 mutated SIP messages (UDP and TCP) and 300 broken RTP
packets while a real sipp call is up. The call keeps its audio and ends normally, the
process answers afterwards, and no call or transaction is left behind.

The mutations are seeded (the same corpus every run) and bounded in count and time.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from switchboard import serve
from tests.helpers import generous_budgets
from tests.test_serve import caller_audio, sipp_call, transcribe
from tests.test_sip_support import need_sipp, run_sipp

pytestmark = pytest.mark.slow

SEED = 20261130
N_UDP, N_TCP, N_RTP = 450, 150, 300

TEMPLATES = [
    "OPTIONS sip:switchboard@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}"
    "\r\nFrom: <sip:fuzz@127.0.0.1>;tag={n}\r\nTo: <sip:switchboard@{host}>\r\nCall-ID: f{n}"
    "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
    "REGISTER sip:{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}\r\n"
    "From: <sip:alice@{host}>;tag={n}\r\nTo: <sip:alice@{host}>\r\nCall-ID: r{n}\r\n"
    "CSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:{src}>\r\nExpires: 60\r\n"
    "Content-Length: 0\r\n\r\n",
    "INVITE sip:switchboard@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}"
    "\r\nFrom: <sip:fuzz@127.0.0.1>;tag={n}\r\nTo: <sip:switchboard@{host}>\r\nCall-ID: i{n}\r\n"
    "CSeq: 1 INVITE\r\nContact: <sip:fuzz@127.0.0.1:{src}>\r\nMax-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
    "BYE sip:switchboard@{host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{src};branch=z9hG4bK{n}\r\n"
    "From: <sip:fuzz@127.0.0.1>;tag={n}\r\nTo: <sip:switchboard@{host}>;tag=x{n}\r\n"
    "Call-ID: b{n}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
]
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def mutate(message: bytes, rng: random.Random) -> bytes:
    """One to three mutations of the kinds a broken or hostile peer sends."""
    data = bytearray(message)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(10)
        if kind == 0 and data:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # truncate
            data = data[: rng.randrange(max(1, len(data)))]
        elif kind == 2:  # lie about the body's length
            data = bytearray(
                bytes(data).replace(
                    b"Content-Length: ",
                    f"Content-Length: {rng.choice([-5, 99999, 7])}".encode()
                    + b"\r\nX-Old-Length: ",
                    1,
                )
            )
        elif kind == 3:  # drop a header line
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                del lines[rng.randrange(1, len(lines) - 1)]
            data = bytearray(b"\r\n".join(lines))
        elif kind == 4:  # a very long header
            data = bytearray(
                bytes(data).replace(
                    b"\r\n", b"\r\nX-Pad: " + b"A" * rng.choice([1000, 8000, 60000]) + b"\r\n", 1
                )
            )
        elif kind == 5:  # garbage start line or unknown method
            first, _, rest = bytes(data).partition(b"\r\n")
            start = rng.choice(
                [
                    b"FOO sip:x SIP/2.0",
                    b"INVITE",
                    b"SIP/2.0",
                    b"\x00\xff junk",
                    b"INVITE sip:x SIP/9.9",
                    first.lower(),
                ]
            )
            data = bytearray(start + b"\r\n" + rest)
        elif kind == 6:  # duplicate a header
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                lines.insert(1, lines[rng.randrange(1, len(lines) - 1)])
            data = bytearray(b"\r\n".join(lines))
        elif kind == 7:  # broken SDP
            data = bytearray(
                bytes(data)
                .replace(b"m=audio 9", b"m=audio x", 1)
                .replace(b"PCMU/8000", rng.choice([b"PCMU", b"", b"G729/8000"]), 1)
            )
        elif kind == 8:  # random binary
            data = bytearray(rng.randbytes(rng.randint(1, 1400)))
        else:  # header without a colon, or folded oddly
            data = bytearray(
                bytes(data).replace(b"CSeq: ", rng.choice([b"CSeq ", b"CSeq:\r\n "]), 1)
            )
    return bytes(data[:65000])


def corpus(port: int, rng: random.Random, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        template = rng.choice(TEMPLATES)
        text = template.format(
            host=f"127.0.0.1:{port}", src=40000 + i % 1000, n=i, len=len(SDP), sdp=SDP
        )
        out.append(mutate(text.encode(), rng))
    return out


class _Sink(asyncio.DatagramProtocol):
    def datagram_received(self, data, addr):
        pass


async def fuzz(port: int, rtp_port: int | None) -> None:
    rng = random.Random(SEED)
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(_Sink, local_addr=("127.0.0.1", 0))
    try:
        for message in corpus(port, rng, N_UDP):
            udp.sendto(message, ("127.0.0.1", port))
            await asyncio.sleep(0.005)
        for message in corpus(port, rng, N_TCP):
            try:
                _reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 2
                )
                writer.write(message)
                await writer.drain()
                writer.close()
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.005)
        if rtp_port:
            for _ in range(N_RTP):
                packet = rng.choice(
                    [
                        rng.randbytes(rng.randint(0, 11)),  # shorter than a header
                        bytes([0x40]) + rng.randbytes(171),  # version 1
                        bytes([0x80, 0]) + rng.randbytes(170),  # another SSRC, random seq
                        bytes([0x8F, 0x60]) + rng.randbytes(30),  # CSRC count past the end
                        bytes([0x90, 0]) + rng.randbytes(20),  # extension past the end
                    ]
                )
                udp.sendto(packet, ("127.0.0.1", rtp_port))
                await asyncio.sleep(0.003)
    finally:
        udp.close()


def test_the_server_survives_fuzzing_while_a_call_goes_on(settings_factory, bundle, data, tmp_path):
    need_sipp()
    settings = generous_budgets(settings_factory())
    settings.store.url = f"sqlite:///{tmp_path / 'calls.db'}"
    settings.sip.port = 0
    settings.server.http_port = 0
    ulaw = caller_audio(data, tmp_path, lead_s=4.0, speech_s=5.0)

    async def main():
        running = await serve.start(settings, bundle)
        endpoint = running.sip.endpoint
        try:
            call = asyncio.ensure_future(sipp_call(running, "uac_audio.xml", ulaw, 16000))
            for _ in range(100):
                if endpoint.calls:
                    break
                await asyncio.sleep(0.1)
            media = endpoint.calls[0].session.port
            await asyncio.wait_for(fuzz(endpoint.port, media), 60)
            result = await asyncio.wait_for(call, 60)
            # The server still answers a well-formed request after all that.
            options = await run_sipp("options.xml", endpoint.port)
            # Mutated INVITEs that still parsed were answered and never ACKed: RFC 3261
            # ends them 64*T1 (32 s) after the 200. Nothing else may be left.
            for _ in range(450):
                if not endpoint.calls and not running.center.calls:
                    break
                await asyncio.sleep(0.1)
            return result, options, len(endpoint.calls), len(running.center.calls)
        finally:
            await serve.stop(running)

    (rc, out, heard), (rc_options, out_options), sip_calls, live = asyncio.run(main())
    assert rc == 0, out  # the call ended normally: its BYE got its 200
    said = transcribe(bundle, heard)
    assert "thanks for calling" in said and "sorry" in said, said
    assert rc_options == 0, out_options
    assert sip_calls == 0 and live == 0
