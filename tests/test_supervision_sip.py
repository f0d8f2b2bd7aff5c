"""A SIP supervisor (sipp) dials the feature code with a live call's number, is challenged
for its digest credentials, joins listening, and switches by DTMF (RFC 4733): 5 whisper,
6 barge, 4 listen, as Asterisk's ChanSpy. Anyone but a supervisor is refused.

The call's caller and agent are real recordings on FileEdge legs (every frame they heard
is kept); the supervisor's phone plays a third recording as μ-law RTP and its received RTP
is captured. In each mode's window (between the SupervisorJoined events the keys cause)
the supervisor's voice as the server received it is searched for in what caller and agent
heard; the parties' words are searched for in what reached the phone on the wire.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly
from switchboard.pipeline.events import SupervisorJoined
from switchboard.telephony import g711

from tests.helpers import run_within
from tests.test_pages_board import NOT_HEARD_PIECES, best_presence
from tests.test_sip_support import free_port, listen_udp, need_sipp, run_sipp, write_ulaw
from tests.test_supervision import (
    HEARD,
    agent_voice,
    caller_voice,
    edge,
    frames,
    live_call,
    supervisor_voice,
)

pytestmark = pytest.mark.slow

PCAPS = Path("/usr/share/sip-tester")
WINDOW_MS = 4500


@pytest.fixture()
def settings(server_settings):
    return server_settings


async def start_gateway(settings, tmp_path):
    """The SIP gateway over a call center without models (no call here is analysed),
    users sue (supervisor) and alice (agent); (gateway, center, users)."""
    from switchboard.callcenter import CallCenter
    from switchboard.sip_gateway import SipGateway
    from switchboard.users import UserStore

    center = CallCenter(settings, bundle=None)
    users = UserStore(f"sqlite:///{tmp_path / 'users.db'}", realm=settings.sip.realm)
    users.add("sue", "supervisor", "sue-password-1")
    users.add("alice", "agent", "alice-password-1")
    gateway = SipGateway(settings, center, users)
    await gateway.start()
    return gateway, center, users


def sipp_keys(code: str, number: str, user: str, password: str) -> tuple[dict, list[str]]:
    """The scenario's dialled user (feature code + number) and sipp's digest credentials."""
    return ({"[service]": f"{code}{number}", "[user]": user},
            ["-au", user, "-ap", password])


def test_a_sip_supervisor_joins_by_feature_code_and_switches_by_dtmf(settings, data,
                                                                     tmp_path):
    need_sipp()
    if not (PCAPS / "dtmf_2833_5.pcap").is_file():
        pytest.skip("sipp's DTMF pcaps missing (scripts/setup --test)")
    voice16 = supervisor_voice(data, 30)
    voice8 = resample_poly(voice16, 1, 2)
    ulaw = write_ulaw((np.clip(voice8, -1, 1) * 32767).astype(np.int16),
                      tmp_path / "supervisor.ulaw")
    caller = edge(caller_voice(data, 60), "caller")
    agent = edge(agent_voice(data, 60), "agent")

    async def main():
        gateway, center, users = await start_gateway(settings, tmp_path)
        record = await live_call(center, caller, agent, record_to=tmp_path / "rec")
        call = record.call
        leg = "supervisor:sue"
        marks: list[tuple] = []

        def mark(event) -> None:
            if isinstance(event, SupervisorJoined):
                legs = call.legs
                marks.append((event.mode, len(caller.heard), len(agent.heard),
                               legs[leg].frames_in if leg in legs else 0, call.mixer.ticks,
                               legs["caller"].frames_in, legs["agent"].frames_in))

        call.bus.subscribe(mark)
        port = free_port()
        rtp_t, rtp = await listen_udp(port)
        rtcp_t, _ = await listen_udp(port + 1)
        literal, extra = sipp_keys(settings.supervision.feature_code, record.number, "sue",
                                   "sue-password-1")
        literal |= {"[audio]": str(ulaw), "[playms]": str(WINDOW_MS)}
        for n, key in enumerate("564", 1):
            literal[f"[pcap{n}]"] = str(PCAPS / f"dtmf_2833_{key}.pcap")
            literal[f"[wait{n}]"] = str(WINDOW_MS)
        try:
            rc, out = await run_sipp("uac_supervise.xml", gateway.endpoint.port,
                                     keys={"rtpport": str(port)}, literal=literal,
                                     extra=extra, timeout_s=40)
            for _ in range(50):
                if call.legs[leg].left_at is not None:
                    break
                await asyncio.sleep(0.1)
        finally:
            rtp_t.close()
            rtcp_t.close()
            caller.leave()
            await asyncio.wait_for(record.task, 10)
            await gateway.stop()
            users.close()
        wire = g711.ulaw_decode(b"".join(p[4] for p in rtp.packets if p[0] == 0))
        return rc, out, marks, dict(call.recordings), wire, call.legs[leg].end_reason

    rc, out, marks, recordings, wire, left = run_within(main(), 90)
    assert rc == 0, out
    modes = [m[0] for m in marks]
    assert modes == ["listen", "whisper", "barge", "listen", ""], modes
    assert left == "hangup"
    import soundfile as sf

    said = sf.read(str(recordings["supervisor:sue-said"]), dtype="int16")[0]
    scores = []
    for start, end in zip(marks, marks[1:], strict=False):
        needle = said[(start[3] + 25) * 320:(end[3] - 25) * 320]
        scores.append((start[0], {
            "agent<-sup": best_presence(needle, frames(agent.heard, start[2], end[2])),
            "caller<-sup": best_presence(needle, frames(caller.heard, start[1], end[1])),
        }))
    print(scores)
    for mode, s in scores:
        if mode == "listen":
            assert s["agent<-sup"] < NOT_HEARD_PIECES, (mode, s)
            assert s["caller<-sup"] < NOT_HEARD_PIECES, (mode, s)
        elif mode == "whisper":
            assert s["agent<-sup"] > HEARD and s["caller<-sup"] < NOT_HEARD_PIECES, s
        else:
            assert s["agent<-sup"] > HEARD and s["caller<-sup"] > HEARD, s
    # The phone heard both parties on the wire (8 kHz): their words while it was on.
    first, last = marks[0], marks[-1]
    caller_said = np.frombuffer(b"".join(caller._frames), dtype="<i2")
    agent_said = np.frombuffer(b"".join(agent._frames), dtype="<i2")
    for name, said16, a, b in (("caller", caller_said, first[5], last[5]),
                               ("agent", agent_said, first[6], last[6])):
        needle8 = resample_poly(said16[(a + 25) * 320:(b - 25) * 320].astype(np.float64),
                                1, 2)
        score = best_presence(needle8, wire.astype(np.float64), chunk=16000)
        assert score > HEARD, (name, score)


def test_the_feature_code_refuses_anyone_but_a_supervisor(settings, data, tmp_path):
    need_sipp()

    async def main():
        gateway, center, users = await start_gateway(settings, tmp_path)
        record = await live_call(center, edge(caller_voice(data, 30), "caller"),
                                 edge(agent_voice(data, 30), "agent"))
        results = {}
        try:
            for name, (number, user, password, expect) in {
                    "agent": (record.number, "alice", "alice-password-1", "403"),
                    "wrong_password": (record.number, "sue", "not-her-password", "403"),
                    "unknown_user": (record.number, "mallory", "whatever", "403"),
                    "no_such_call": ("999999", "sue", "sue-password-1", "404")}.items():
                literal, extra = sipp_keys(settings.supervision.feature_code, number, user,
                                           password)
                rc, out = await run_sipp("uac_supervise_refused.xml",
                                         gateway.endpoint.port, keys={"rtpport": "9"},
                                         literal=literal | {"[expect]": expect},
                                         extra=extra, timeout_s=15)
                results[name] = (rc, out)
            legs = sorted(record.call.legs)
        finally:
            record.call.end("test over")
            await asyncio.wait_for(record.task, 10)
            await gateway.stop()
            users.close()
        return results, legs

    results, legs = run_within(main(), 90)
    for name, (rc, out) in results.items():
        assert rc == 0, (name, out)  # challenged first, then exactly the refusal expected
    assert legs == ["agent", "caller"]  # nobody joined
