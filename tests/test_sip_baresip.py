"""baresip as an agent's phone: digest REGISTER, then dial("agent1") through the binding.

baresip's aubridge module joins its player to its source, so the phone plays back what it
hears: our tone coming back proves audio flows both ways through a real SIP phone.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest
from switchboard.telephony.sip.call import CallState
from switchboard.telephony.sip.digest import ha1
from switchboard.telephony.sip.endpoint import SipEndpoint

from switchboard.config import SipOptions
from tests.test_sip_support import BARESIP, dominant_hz, free_port, tone_frames

REALM = "switchboard"


def _config(tmp: Path, endpoint_port: int, password: str, transport: str = "udp") -> Path:
    phone_port = free_port()
    rtp = free_port()
    (tmp / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{phone_port}",
                f"sip_transports {transport}",
                "net_interface 127.0.0.1",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aubridge.so",
                "module_app account.so",
                "audio_player aubridge,bridge",
                "audio_source aubridge,bridge",
                "audio_alert aubridge,alert",
                f"rtp_ports {rtp + 100}-{rtp + 199}",
                "",
            ]
        )
    )
    (tmp / "accounts").write_text(
        f"<sip:agent1@127.0.0.1:{endpoint_port};transport={transport}>;"
        f"auth_pass={password};answermode=auto;regint=60\n"
    )
    return tmp


async def _baresip(conf: Path) -> asyncio.subprocess.Process:
    if BARESIP is None:
        pytest.skip("baresip not installed (scripts/setup --test)")
    log = open(conf / "log", "w")  # noqa: SIM115 - closed with the process
    return await asyncio.create_subprocess_exec(
        BARESIP, "-f", str(conf), "-t", "30", stdout=log, stderr=subprocess.STDOUT
    )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _endpoint() -> SipEndpoint:
    return SipEndpoint(
        "127.0.0.1",
        free_port(),
        transports=("udp", "tcp"),
        credentials={"agent1": ha1("agent1", REALM, "s3cret")},
        options=SipOptions(realm=REALM),
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_and_answers_dial(tmp_path, transport):
    async def main():
        ep = _endpoint()
        await ep.start()
        proc = await _baresip(_config(tmp_path, ep.port, "s3cret", transport))
        try:
            for _ in range(100):  # 10 s at most
                if ep.registrar.lookup("agent1"):
                    break
                await asyncio.sleep(0.1)
            contacts = ep.registrar.lookup("agent1")
            assert contacts, (tmp_path / "log").read_text()
            assert contacts[0].parameters.get("transport", "udp") == transport
            call = await ep.dial("agent1")
            edge = await call.wait_answered(10)
            tone = tone_frames(1000.0)
            heard = []
            for i in range(150):
                edge.send(tone[i])
                frame = await edge.receive()
                assert frame is not None
                heard.append(frame)
            stats = edge.stats
            await edge.close("agent done")
            return call, heard, stats
        finally:
            await ep.stop()
            await _stop(proc)

    call, heard, stats = asyncio.run(main())
    assert call.state == CallState.ENDED
    echoed = np.frombuffer(b"".join(heard[50:]), dtype="<i2")
    assert np.sqrt(np.mean(echoed.astype(float) ** 2)) > 1000, stats
    assert abs(dominant_hz(echoed, 16000) - 1000) < 20
    assert stats.sent > 100 and stats.received > 100


def test_baresip_wrong_password_is_not_registered(tmp_path):
    async def main():
        ep = _endpoint()
        await ep.start()
        proc = await _baresip(_config(tmp_path, ep.port, "wrong"))
        try:
            log = tmp_path / "log"
            for _ in range(50):  # 5 s at most for baresip to give up
                if "403" in log.read_text():
                    break
                await asyncio.sleep(0.1)
            return ep.registrar.lookup("agent1"), log.read_text()
        finally:
            await ep.stop()
            await _stop(proc)

    bindings, log = asyncio.run(main())
    assert bindings == []
    assert "403" in log, log
