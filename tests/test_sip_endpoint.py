"""SipEndpoint against sipp as a real caller (UAC) and a real callee (UAS), on loopback.

Every call is bounded: sipp runs one call with a timeout, every loop has a frame cap.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from switchboard.telephony import g711
from switchboard.telephony.sip.call import CallFailed, CallState, IncomingCall
from switchboard.telephony.sip.endpoint import SipEndpoint

from switchboard.config import SipOptions
from tests.test_sip_support import (
    dominant_hz,
    free_port,
    listen_udp,
    load_recording,
    need_sipp,
    run_sipp,
    tone_frames,
    windowed_correlation,
    write_ulaw,
)

MAX_FRAMES = 1000  # 20 s: no test loop runs longer


def _endpoint(handler, **kw) -> SipEndpoint:
    return SipEndpoint(
        "127.0.0.1", free_port(), on_invite=handler, options=SipOptions(rtcp_interval_s=1.0), **kw
    )


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_call_audio_both_ways(data, tmp_path, transport):
    """A sipp caller plays a real 8 kHz prompt; we hear it, and it hears our tone."""
    need_sipp()
    recording = load_recording(data)
    audio = write_ulaw(recording, tmp_path / "prompt.ulaw")
    heard: list[bytes] = []
    events: list[str] = []

    async def handler(call: IncomingCall) -> None:
        events.append(call.transport)
        await call.ring()
        edge = await call.answer()
        tone = tone_frames()
        for i in range(MAX_FRAMES):
            frame = await edge.receive()
            if frame is None:
                events.append("bye")
                return
            heard.append(frame)
            edge.send(tone[i])

    async def main():
        ep = _endpoint(handler)
        await ep.start()
        rtp_port = free_port()
        t1, rtp = await listen_udp(rtp_port)
        t2, rtcp = await listen_udp(rtp_port + 1)
        try:
            # sipp reads exec and pause attributes before keywords apply: literal text.
            literal = {"[audio]": str(audio), "[playms]": "5500"}
            rc, out = await run_sipp(
                "uac_audio.xml",
                ep.port,
                transport=transport,
                keys={"rtpport": str(rtp_port)},
                literal=literal,
            )
            for _ in range(50):  # let the handler see the BYE
                if "bye" in events:
                    break
                await asyncio.sleep(0.05)
            # Seen before stop(), which would end the call itself.
            events.append("bye seen" if "bye" in events else "no bye")
        finally:
            await ep.stop()
            t1.close()
            t2.close()
        return rc, out, rtp, rtcp

    rc, out, rtp, rtcp = asyncio.run(main())
    assert rc == 0, out
    assert events[0] == ("UDP" if transport == "u1" else "TCP")
    assert events[-1] == "bye seen", "BYE from sipp must end edge.receive() with None"
    # What we heard is the recording: upsampled to 16 kHz, compare at 8 kHz.
    pcm16 = np.frombuffer(b"".join(heard), dtype="<i2")
    pcm8 = pcm16[::2]
    assert len(pcm8) >= len(recording) * 0.9
    corr = windowed_correlation(pcm8, recording)
    assert corr > 0.9, f"correlation with the recording {corr:.3f}"
    rms_in = np.sqrt(np.mean(recording.astype(float) ** 2))
    rms_out = np.sqrt(np.mean(pcm8.astype(float) ** 2)) * len(pcm8) / len(recording)
    assert 0.5 < rms_out / rms_in < 2.0
    # sipp's side got our tone as PCMU with monotonic sequence numbers and timestamps.
    audio_pkts = [p for p in rtp.packets if p[0] == 0]
    assert len(audio_pkts) > 150, len(audio_pkts)
    seqs = [p[1] for p in audio_pkts]
    assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert all(
        (b[2] - a[2]) % 2**32 == 160 for a, b in zip(audio_pkts, audio_pkts[1:], strict=False)
    )
    decoded = g711.ulaw_decode(b"".join(p[4] for p in audio_pkts[10:]))
    assert abs(dominant_hz(decoded, 8000) - 440) < 10
    # RTCP sender reports arrived on the RTCP port (interval 1 s in this test).
    assert any(len(r) >= 28 and r[1] == 200 for r in rtcp.raw), "no RTCP SR"


def test_sipp_cancel_while_ringing():
    """CANCEL before the answer: 200 to the CANCEL, 487 to the INVITE, handler told."""
    seen: dict[str, object] = {}

    async def handler(call: IncomingCall) -> None:
        await call.ring()
        try:
            await asyncio.wait_for(call.cancelled.wait(), 10)
        except TimeoutError:
            await call.reject(486)
        seen["cancelled"] = call.cancelled.is_set()
        seen["state"] = call.state

    async def main():
        ep = _endpoint(handler)
        await ep.start()
        try:
            rc, out = await run_sipp("uac_cancel.xml", ep.port)
            await asyncio.sleep(0.1)
            return rc, out, ep.calls
        finally:
            await ep.stop()

    rc, out, calls = asyncio.run(main())
    assert rc == 0, out
    assert seen == {"cancelled": True, "state": CallState.CANCELLED}
    assert calls == []


def test_sipp_options():
    """OPTIONS gets 200 with Allow and Accept."""

    async def main():
        ep = _endpoint(None)
        await ep.start()
        try:
            return await run_sipp("options.xml", ep.port)
        finally:
            await ep.stop()

    rc, out = asyncio.run(main())
    assert rc == 0, out


def test_sipp_488_on_unknown_codec():
    """An offer with only G.729 gets 488; the handler never sees it."""
    called = []

    async def handler(call: IncomingCall) -> None:
        called.append(call)
        await call.answer()

    async def main():
        ep = _endpoint(handler)
        await ep.start()
        try:
            keys = {"fmt": "18", "codec": "G729/8000"}
            literal = {"[expect]": "488", "[retry]": "SIP/2.0 488"}
            return await run_sipp("uac_reject.xml", ep.port, keys=keys, literal=literal)
        finally:
            await ep.stop()

    rc, out = asyncio.run(main())
    assert rc == 0, out
    assert called == []


def test_sipp_503_retry_after_from_handler():
    """Admission control: the handler rejects with 503 and Retry-After."""

    async def handler(call: IncomingCall) -> None:
        await call.reject(503, "Service Unavailable", retry_after=30)

    async def main():
        ep = _endpoint(handler)
        await ep.start()
        try:
            keys = {"fmt": "8", "codec": "PCMA/8000"}
            # sipp applies no keywords inside a regexp: literal text.
            literal = {"[expect]": "503", "[retry]": "Retry-After: 30"}
            return await run_sipp("uac_reject.xml", ep.port, keys=keys, literal=literal)
        finally:
            await ep.stop()

    rc, out = asyncio.run(main())
    assert rc == 0, out


def test_dial_sipp_uas_with_echo():
    """dial() a SIP URI answered by sipp's built-in UAS, which echoes our RTP back."""
    need_sipp()

    async def main():
        ep = _endpoint(None)
        await ep.start()
        sipp_port = free_port()
        sipp_task = asyncio.create_task(
            run_sipp("uas", 0, mode_remote=False, extra=["-p", str(sipp_port), "-rtp_echo"])
        )
        await asyncio.sleep(0.5)  # sipp binds its port
        try:
            call = await ep.dial(f"sip:service@127.0.0.1:{sipp_port}")
            await asyncio.wait_for(call.ringing.wait(), 5)
            edge = await call.wait_answered(10)
            tone = tone_frames(1000.0)
            got = []
            for i in range(150):
                edge.send(tone[i])
                frame = await edge.receive()
                assert frame is not None
                got.append(frame)
            await edge.close("done")
            rc, out = await asyncio.wait_for(sipp_task, 15)
            return rc, out, got, call
        finally:
            if not sipp_task.done():
                sipp_task.cancel()
            await ep.stop()

    rc, out, got, call = asyncio.run(main())
    assert rc == 0, out
    assert call.state == CallState.ENDED
    echoed = np.frombuffer(b"".join(got[50:]), dtype="<i2")
    assert np.sqrt(np.mean(echoed.astype(float) ** 2)) > 1000, "no echo heard"
    assert abs(dominant_hz(echoed, 16000) - 1000) < 20


def test_dial_unreachable_fails():
    """A dial to a port where nobody listens fails with a final code (bounded by timer B)."""

    async def main():
        ep = _endpoint(None)
        await ep.start()
        try:
            with pytest.raises(CallFailed):
                await ep.dial("agent-nobody")
            call = await ep.dial(f"sip:x@127.0.0.1:{free_port()};transport=tcp")
            with pytest.raises(CallFailed) as info:
                await call.wait_answered(5)
            return info.value.code
        finally:
            await ep.stop()

    assert asyncio.run(main()) == 503


def test_sipp_reinvite_hold_and_resume():
    """re-INVITE a=sendonly puts us on hold (answer recvonly), a=sendrecv resumes."""
    holds: list[bool] = []
    done = asyncio.Event()

    async def handler(call: IncomingCall) -> None:
        call.on_hold = holds.append
        edge = await call.answer()
        for _ in range(MAX_FRAMES):
            if await edge.receive() is None:
                break
        done.set()

    async def main():
        ep = _endpoint(handler)
        await ep.start()
        try:
            rc, out = await run_sipp("uac_hold.xml", ep.port)
            await asyncio.wait_for(done.wait(), 5)
            return rc, out
        finally:
            await ep.stop()

    rc, out = asyncio.run(main())
    assert rc == 0, out
    assert holds == [True, False]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_our_uac_to_our_uas_dtmf_and_stop_sends_bye(transport):
    """Two endpoints: DTMF sent on one edge arrives once per digit on the other's on_dtmf;
    stop() on the answering side ends the caller's edge (BYE)."""
    digits: list[str] = []
    answered = asyncio.Event()

    async def handler(call: IncomingCall) -> None:
        edge = await call.answer()
        edge.on_dtmf = digits.append
        answered.set()

    async def main():
        uas = _endpoint(handler)
        uac = _endpoint(None)
        await uas.start()
        await uac.start()
        try:
            call = await uac.dial(f"sip:bot@127.0.0.1:{uas.port}", transport=transport)
            edge = await call.wait_answered(5)
            await asyncio.wait_for(answered.wait(), 5)
            edge.send_dtmf("12#")
            for _ in range(60):  # 1.2 s: three events of 100 ms plus end packets
                edge.send(bytes(640))
                if await edge.receive() is None:
                    break
            await uas.stop()
            frames = 0
            for _ in range(100):
                if await edge.receive() is None:
                    break
                frames += 1
            return call, frames
        finally:
            await uac.stop()

    call, frames = asyncio.run(main())
    assert digits == ["1", "2", "#"]
    assert frames < 100 and call.end_reason == "remote hangup"


def test_ringing_outlives_timer_b(monkeypatch):
    """An agent's phone may ring longer than timer B (64·T1): the dial-out must not 408."""
    import sipua.transaction

    monkeypatch.setattr(sipua.transaction, "T1", 0.02)  # timer B = 1.28 s

    async def handler(call: IncomingCall) -> None:
        await call.ring()
        await asyncio.sleep(2.0)
        await call.answer()

    async def main():
        uas = _endpoint(handler)
        uac = _endpoint(None)
        await uas.start()
        await uac.start()
        try:
            call = await uac.dial(f"sip:agent@127.0.0.1:{uas.port}", transport="tcp")
            await asyncio.wait_for(call.ringing.wait(), 2)
            edge = await call.wait_answered(5)
            await edge.close("done")
            return call
        finally:
            await uac.stop()
            await uas.stop()

    assert asyncio.run(main()).state == CallState.ENDED


def test_we_hold_and_resume_and_info_dtmf():
    """Our re-INVITE a=sendonly holds the peer (its on_hold fires), sendrecv resumes;
    INFO application/dtmf-relay becomes a digit, other INFO bodies get 415."""
    import sipmessage

    holds: list[bool] = []
    digits: list[str] = []
    answered = asyncio.Event()

    async def handler(call: IncomingCall) -> None:
        call.on_hold = holds.append
        edge = await call.answer()
        edge.on_dtmf = digits.append
        answered.set()

    async def info(call, ctype: str, body: bytes) -> int:
        request = call.dialog.create_request("INFO")
        request.content_type = sipmessage.MediaType(mime_type=ctype)
        request.body = body
        return (await call.dialog.send_request(request)).code

    async def main():
        uas, uac = _endpoint(handler), _endpoint(None)
        await uas.start()
        await uac.start()
        try:
            call = await uac.dial(f"sip:bot@127.0.0.1:{uas.port}")
            edge = await call.wait_answered(5)
            await asyncio.wait_for(answered.wait(), 5)
            await call.hold()
            held = (call.holding, call.session.sending, call.session.receiving)
            await call.resume()
            resumed = (call.holding, call.session.sending, call.session.receiving)
            codes = [
                await info(call, "application/dtmf-relay", b"Signal=7\r\nDuration=160\r\n"),
                await info(call, "application/dtmf", b"11"),
                await info(call, "text/plain", b"hello"),
            ]
            await edge.close("done")
            return held, resumed, codes
        finally:
            await uac.stop()
            await uas.stop()

    held, resumed, codes = asyncio.run(main())
    assert holds == [True, False]
    assert held == (True, True, False) and resumed == (False, True, True)
    assert codes == [200, 200, 415] and digits == ["7", "#"]
