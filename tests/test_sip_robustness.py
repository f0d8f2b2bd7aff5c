"""Hostile and broken SIP on the wire: the endpoint answers 400/405/481/501 or drops, and
keeps serving. Raw sockets, so nothing is cleaned up for us by a well-behaved client."""

from __future__ import annotations

import asyncio

from switchboard.telephony.sip.endpoint import SipEndpoint

from tests.test_sip_support import free_port


def _req(
    method: str,
    port: int,
    *,
    call_id: str | None = "c1",
    cseq: str | None = None,
    via: bool = True,
    body: bytes = b"",
    length: int | None = None,
    extra: str = "",
) -> bytes:
    lines = [f"{method} sip:svc@127.0.0.1:{port} SIP/2.0"]
    if via:
        branch = f"z9hG4bK{method}{call_id}{(cseq or '').replace(' ', '')}"
        lines.append(f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={branch}")
    lines += ["From: <sip:a@127.0.0.1>;tag=t1", f"To: <sip:svc@127.0.0.1:{port}>"]
    if call_id is not None:
        lines.append(f"Call-ID: {call_id}")
    lines.append(f"CSeq: {cseq or '1 ' + method}")
    lines.append("Max-Forwards: 70")
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _udp_exchange(port: int, data: bytes, wait: float = 0.3) -> list[bytes]:
    loop = asyncio.get_running_loop()
    replies: list[bytes] = []

    class P(asyncio.DatagramProtocol):
        def datagram_received(self, d: bytes, addr) -> None:
            replies.append(d)

    transport, _ = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
    # The Via says port 9: make replies come back to this socket via rport.
    local = transport.get_extra_info("sockname")[1]
    transport.sendto(
        data.replace(b"127.0.0.1:9;", f"127.0.0.1:{local};rport;".encode()), ("127.0.0.1", port)
    )
    await asyncio.sleep(wait)
    transport.close()
    return replies


def _code(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_udp_garbage_and_malformed_requests():
    async def main():
        ep = SipEndpoint("127.0.0.1", free_port())
        await ep.start()
        port = ep.port
        try:
            results = {}
            for name, data in {
                "garbage": b"\xff\xfe\x00hello",
                "bad_start": b"HELLO WORLD\r\n\r\n",
                "no_colon": _req("OPTIONS", port).replace(b"Max-Forwards: 70", b"Max-Forwards 70"),
                "no_call_id": _req("OPTIONS", port, call_id=None),
                "no_via": _req("OPTIONS", port, via=False),
                "cseq_mismatch": _req("OPTIONS", port, cseq="1 INVITE"),
                "short_body": _req("OPTIONS", port, body=b"0123456789", length=100),
                "foo": _req("FOO", port, call_id="c2"),
                "subscribe": _req("SUBSCRIBE", port, call_id="c3"),
                "bye_nodialog": _req("BYE", port, call_id="c4"),
                "invite_no_contact": _req("INVITE", port, call_id="c5"),
                "invite_bad_sdp": _req(
                    "INVITE",
                    port,
                    call_id="c6",
                    body=b"v=0\r\nnonsense",
                    extra="Contact: <sip:a@127.0.0.1:9>\r\nContent-Type: application/sdp",
                ),
                "options": _req("OPTIONS", port, call_id="c7"),
            }.items():
                results[name] = await _udp_exchange(port, data)
            return results
        finally:
            await ep.stop()

    r = asyncio.run(main())
    for dropped in ("garbage", "bad_start", "no_colon", "no_via"):
        assert r[dropped] == [], dropped
    for bad in ("no_call_id", "cseq_mismatch", "short_body", "invite_no_contact", "invite_bad_sdp"):
        assert r[bad] and _code(r[bad][-1]) == 400, (bad, r[bad])
    assert _code(r["foo"][0]) == 501
    assert _code(r["subscribe"][0]) == 405 and b"Allow: INVITE" in r["subscribe"][0]
    assert _code(r["bye_nodialog"][0]) == 481
    assert _code(r["options"][0]) == 200


def test_tcp_stream_framing():
    """Two messages in one segment, one message in three pieces, garbage in between."""

    async def main():
        ep = SipEndpoint("127.0.0.1", free_port(), transports=("tcp",))
        await ep.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
            tcp = lambda m: m.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")  # noqa: E731
            writer.write(
                tcp(_req("OPTIONS", ep.port, call_id="t1"))
                + tcp(_req("OPTIONS", ep.port, call_id="t2"))
            )
            third = tcp(
                _req(
                    "OPTIONS",
                    ep.port,
                    call_id="t3",
                    body=b"hello",
                    extra="Content-Type: text/plain",
                )
            )
            for piece in (third[:20], third[20:-3], third[-3:]):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.write(b"\r\n\r\nNOT SIP AT ALL\r\n\r\n")
            writer.write(tcp(_req("OPTIONS", ep.port, call_id="t4")))
            await writer.drain()
            data = b""
            for _ in range(20):
                try:
                    data += await asyncio.wait_for(reader.read(65536), 0.2)
                except TimeoutError:
                    pass
                if data.count(b"SIP/2.0 200") >= 4:
                    break
            writer.close()
            return data
        finally:
            await ep.stop()

    data = asyncio.run(main())
    assert data.count(b"SIP/2.0 200 OK") == 4, data
    for cid in (b"t1", b"t2", b"t3", b"t4"):
        assert b"Call-ID: " + cid in data


def test_invite_retransmission_is_not_a_second_call():
    """The same INVITE sent three times (a UDP retransmission) reaches the handler once."""
    seen = []

    async def handler(call) -> None:
        seen.append(call.call_id)
        await call.ring()
        await asyncio.sleep(0.5)
        await call.reject(486)

    async def main():
        ep = SipEndpoint("127.0.0.1", free_port(), on_invite=handler)
        await ep.start()
        try:
            sdp = (
                b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                b"m=audio 4000 RTP/AVP 0\r\n"
            )
            invite = _req(
                "INVITE",
                ep.port,
                call_id="rx",
                body=sdp,
                extra="Contact: <sip:a@127.0.0.1:9>\r\nContent-Type: application/sdp",
            )
            replies = []
            for _ in range(3):
                replies += await _udp_exchange(ep.port, invite, 0.1)
            await asyncio.sleep(0.6)
            return replies
        finally:
            await ep.stop()

    replies = asyncio.run(main())
    assert seen == ["rx"]
    assert b"180 Ringing" in b"".join(replies)


def test_200_retransmitted_over_udp_until_ack():
    """RFC 3261 13.3.1.4: our 200 repeats (T1, 2·T1, ...) until the ACK, then stops."""

    async def handler(call) -> None:
        await call.answer()

    async def exchange(port: int, call_id: str, ack: bool) -> list[bytes]:
        loop = asyncio.get_running_loop()
        replies: list[bytes] = []

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, d: bytes, addr) -> None:
                replies.append(d)

        transport, _ = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
        local = transport.get_extra_info("sockname")[1]
        sdp = (
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 0\r\n"
        )
        invite = _req(
            "INVITE",
            port,
            call_id=call_id,
            body=sdp,
            extra=f"Contact: <sip:a@127.0.0.1:{local}>\r\nContent-Type: application/sdp",
        ).replace(b"127.0.0.1:9;", f"127.0.0.1:{local};rport;".encode())
        transport.sendto(invite, ("127.0.0.1", port))
        for _ in range(40):
            if any(b" 200 OK" in r.split(b"\r\n")[0] for r in replies):
                break
            await asyncio.sleep(0.025)
        if ack:
            ok = next(r for r in replies if b" 200 OK" in r.split(b"\r\n")[0])
            to = next(line for line in ok.split(b"\r\n") if line.startswith(b"To:"))
            ack_msg = (
                _req("ACK", port, call_id=call_id, cseq="1 ACK")
                .replace(b"127.0.0.1:9;", f"127.0.0.1:{local};rport;".encode())
                .replace(f"To: <sip:svc@127.0.0.1:{port}>".encode(), to)
            )
            transport.sendto(ack_msg, ("127.0.0.1", port))
        await asyncio.sleep(2.0)
        transport.close()
        return [r for r in replies if b" 200 OK" in r.split(b"\r\n")[0]]

    async def main():
        ep = SipEndpoint("127.0.0.1", free_port(), on_invite=handler)
        await ep.start()
        try:
            acked = await exchange(ep.port, "acked", True)
            unacked = await exchange(ep.port, "unacked", False)
            return acked, unacked
        finally:
            await ep.stop()

    acked, unacked = asyncio.run(main())
    assert len(acked) == 1, len(acked)
    assert len(unacked) >= 3, len(unacked)  # at 0, 0.5, 1.5 s


def test_port_zero_picks_one_port_for_udp_and_tcp():
    async def main():
        ep = SipEndpoint("127.0.0.1", 0)
        await ep.start()
        try:
            udp = await _udp_exchange(ep.port, _req("OPTIONS", ep.port, call_id="z1"))
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
            writer.write(_req("OPTIONS", ep.port, call_id="z2").replace(b"/UDP", b"/TCP"))
            tcp = await asyncio.wait_for(reader.read(4096), 2)
            writer.close()
            return ep.port, udp, tcp
        finally:
            await ep.stop()

    port, udp, tcp = asyncio.run(main())
    assert port > 0
    assert _code(udp[0]) == 200 and _code(tcp) == 200


def test_caller_gone_before_answer_leaves_nothing_behind():
    """A TCP caller that disconnects while ringing: answer() fails, the call is released."""
    outcome: list[str] = []
    ringing = asyncio.Event()

    async def handler(call) -> None:
        await call.ring()
        ringing.set()
        await asyncio.sleep(0.3)  # meanwhile the caller's connection closes
        try:
            await call.answer()
            outcome.append("answered")
        except OSError:
            outcome.append("failed")

    async def main():
        ep = SipEndpoint("127.0.0.1", free_port(), on_invite=handler, transports=("tcp",))
        await ep.start()
        try:
            sdp = (
                b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                b"m=audio 4000 RTP/AVP 0\r\n"
            )
            invite = _req(
                "INVITE",
                ep.port,
                call_id="gone",
                body=sdp,
                extra="Contact: <sip:a@127.0.0.1:9;transport=tcp>\r\nContent-Type: application/sdp",
            ).replace(b"/UDP", b"/TCP")
            reader, writer = await asyncio.open_connection("127.0.0.1", ep.port)
            writer.write(invite)
            await writer.drain()
            await asyncio.wait_for(ringing.wait(), 2)
            writer.close()
            await asyncio.sleep(0.6)
            return ep.calls
        finally:
            await ep.stop()

    calls = asyncio.run(main())
    assert outcome == ["failed"] and calls == []
