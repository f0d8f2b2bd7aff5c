"""Shared helpers for the SIP tests: free ports, a sipp runner, an RTP listener, audio.

No tests here; the test_sip_* modules import these.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from switchboard.telephony import g711

SIPP = shutil.which("sipp")
BARESIP = shutil.which("baresip")
SCENARIOS = Path(__file__).parent / "sipp"
RECORDING = "asr/asterisk_8k/agent-user.wav"


def free_port() -> int:
    """A port free for both UDP and TCP, and its +1 for RTCP (bounded attempts)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
        if port % 2 or port > 65000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u2:
                u2.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise OSError("no free port")


def need_sipp() -> str:
    """The sipp binary, or skip (scripts/setup --test installs it)."""
    if SIPP is None:
        pytest.skip("sipp not installed (scripts/setup --test)")
    return SIPP


async def run_sipp(
    scenario: str,
    port: int,
    *,
    transport: str = "u1",
    keys: dict[str, str] | None = None,
    extra: list[str] | None = None,
    timeout_s: float = 30.0,
    mode_remote: bool = True,
    literal: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run one sipp call against 127.0.0.1:port; returns (exit code, output).

    ``keys`` become sipp ``-key`` keywords; ``literal`` replaces text in a temporary copy
    of the scenario, for places sipp takes no keyword (a response code to wait for).
    """
    sipp = need_sipp()
    args = [sipp]
    if scenario.endswith(".xml"):
        path = SCENARIOS / scenario
        if literal:
            text = path.read_text()
            for k, v in literal.items():
                text = text.replace(k, v)
            tmp = Path(tempfile.mkdtemp(prefix="sipp-")) / scenario
            tmp.write_text(text)
            path = tmp
        args += ["-sf", str(path)]
    else:
        args += ["-sn", scenario]
    if mode_remote:
        args.append(f"127.0.0.1:{port}")
    args += ["-i", "127.0.0.1", "-m", "1", "-nostdin", "-t", transport]
    args += ["-timeout", f"{int(timeout_s)}s", "-timeout_error", "-mp", str(free_port())]
    for k, v in (keys or {}).items():
        args += ["-key", k, v]
    args += extra or []
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s + 10)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace")[-4000:]


def load_recording(data: Path) -> np.ndarray:
    """The 8 kHz int16 samples of a real telephone prompt."""
    import soundfile as sf

    samples, rate = sf.read(data / RECORDING, dtype="int16")
    assert rate == 8000
    return samples


def write_ulaw(samples: np.ndarray, path: Path) -> Path:
    """Raw μ-law for sipp's rtp_stream (written at test time, never committed)."""
    path.write_bytes(g711.ulaw_encode(samples))
    return path


def tone_frames(freq: float = 440.0, amplitude: float = 8000.0, n: int = 1000) -> list[bytes]:
    """20 ms 16 kHz PCM16 frames of a continuous sine."""
    t = np.arange(320 * n) / 16000.0
    pcm = (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2")
    return [pcm[i * 320 : (i + 1) * 320].tobytes() for i in range(n)]


def windowed_correlation(heard: np.ndarray, ref: np.ndarray, window: int = 4000) -> float:
    """Median over the reference's voiced 0.5 s windows of their best match in ``heard``.

    Robust to a gap inserted mid-stream (an underrun on a loaded machine shifts the rest
    of the audio by a frame, which would spoil a single whole-signal correlation).
    """
    from scipy.signal import correlate

    h = heard.astype(np.float64)
    loud = np.sqrt(np.mean(ref.astype(np.float64) ** 2)) * 0.5
    scores = []
    for start in range(0, len(ref) - window, window):
        w = ref[start : start + window].astype(np.float64)
        if np.sqrt(np.mean(w**2)) < loud:
            continue
        c = correlate(h, w, mode="valid", method="fft")
        energy = np.sqrt(np.convolve(h**2, np.ones(window), mode="valid"))
        scores.append(float(np.max(np.abs(c) / (energy * np.linalg.norm(w) + 1e-9))))
    return float(np.median(scores)) if scores else 0.0


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency of a signal."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


class RtpListener(asyncio.DatagramProtocol):
    """Collects the RTP (or RTCP) packets sent to it: (pt, seq, ts, ssrc, payload)."""

    def __init__(self) -> None:
        self.packets: list[tuple[int, int, int, int, bytes]] = []
        self.raw: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.raw.append(data)
        if len(data) >= 12:
            b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
            self.packets.append((b1 & 0x7F, seq, ts, ssrc, data[12:]))


async def listen_udp(port: int) -> tuple[asyncio.DatagramTransport, RtpListener]:
    """An RtpListener bound on 127.0.0.1:port."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        RtpListener, local_addr=("127.0.0.1", port)
    )
    return transport, proto  # type: ignore[return-value]
