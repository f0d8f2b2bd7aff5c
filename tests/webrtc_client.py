"""An aiortc peer that calls ``switchboard serve`` like the caller page does (tests and the
benchmark): it posts its offer, plays a recording as its microphone in real time, keeps
the audio it receives (16 kHz) and the messages of the ``events`` data channel."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from dataclasses import dataclass, field

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 16000
SAMPLES = 320
#: The project root: where ``python -m tests.webrtc_client`` runs from.
ROOT_HINT = str(__import__("pathlib").Path(__file__).resolve().parents[1])


class RecordingTrack(MediaStreamTrack):
    """A recording (16 kHz int16) as a microphone, 20 ms per 20 ms, then silence."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray) -> None:
        super().__init__()
        self.pcm = pcm.astype(np.int16)
        self._i = 0
        self._start: float | None = None
        #: monotonic time each 20 ms frame was handed to the encoder (for latency).
        self.sent_at: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._i * SAMPLES / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = self.pcm[self._i * SAMPLES:(self._i + 1) * SAMPLES]
        chunk = np.pad(chunk, (0, SAMPLES - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._i * SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent_at.append(time.monotonic())
        self._i += 1
        return frame


@dataclass
class PeerResult:
    """What the calling peer got."""

    call_id: str = ""
    heard: bytearray = field(default_factory=bytearray)  # 16 kHz int16
    heard_at: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes so far)
    frames: list[tuple[float, int]] = field(default_factory=list)  # (time, peak) received
    events: list[dict] = field(default_factory=list)
    status: int = 0
    error: str = ""
    state: str = ""
    pressed: list[tuple[float, str]] = field(default_factory=list)


async def call_bot(base_url: str, pcm: np.ndarray, listen_s: float = 3.0,
                   channel_label: str = "events", track: RecordingTrack | None = None,
                   on_answer=None, keys: tuple[tuple[float, str], ...] = (),
                   key_after_final: str | None = None) -> PeerResult:
    """One call to the bot over WebRTC; returns once the recording and ``listen_s`` have
    played (or the server ended the call). ``keys``: (seconds after the answer, digit)
    pressed on the page's keypad (sent on the events channel); ``key_after_final``: a key
    pressed once the bot's first transcript of the caller has come back (a loaded
    machine's turn ends late: the key then comes with the words in the call's context)."""
    result = PeerResult()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel(channel_label)
    ended = asyncio.Event()
    track = track or RecordingTrack(pcm)
    pc.addTrack(track)
    readers: list[asyncio.Task] = []

    @channel.on("message")
    def on_message(message):
        body = json.loads(message)
        result.events.append(body)
        if (key_after_final and body.get("kind") == "transcript_final"
                and not result.pressed):
            channel.send(json.dumps({"dtmf": key_after_final}))
            result.pressed.append((time.monotonic(), key_after_final))
        if body.get("kind") == "ended":
            ended.set()

    async def record(remote) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        for _ in range(50 * 600):
            try:
                frame = await asyncio.wait_for(remote.recv(), 5.0)
            except (MediaStreamError, TimeoutError):
                return
            peak = 0
            for out in resampler.resample(frame):
                samples = out.to_ndarray()
                result.heard += samples.tobytes()
                peak = max(peak, int(np.abs(samples.astype(np.int32)).max(initial=0)))
            result.heard_at.append((time.monotonic(), len(result.heard)))
            result.frames.append((time.monotonic(), peak))

    async def press(at: float, digit: str) -> None:
        await asyncio.sleep(at)
        if channel.readyState == "open":
            channel.send(json.dumps({"dtmf": digit}))
            result.pressed.append((time.monotonic(), digit))

    @pc.on("track")
    def on_track(remote):
        if remote.kind == "audio":
            readers.append(asyncio.ensure_future(record(remote)))

    # A browser's jitter buffer adapts down to a frame or two on a clean network; aiortc's
    # holds four (80 ms). The peer stands in for a browser: one frame, as the server's.
    from switchboard.telephony.webrtc import short_jitter_buffer

    for receiver in pc.getReceivers():
        short_jitter_buffer(receiver)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http, http.post(
                f"{base_url}/webrtc/offer",
                json={"sdp": pc.localDescription.sdp, "type": "offer"}) as r:
            result.status = r.status
            body = await r.json()
        if r.status != 200:
            result.error = body.get("error", "")
            return result
        result.call_id = body["call_id"]
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        if on_answer is not None:
            on_answer(result.call_id)
        for at, digit in keys:
            readers.append(asyncio.ensure_future(press(at, digit)))
        try:
            await asyncio.wait_for(ended.wait(), len(pcm) / RATE + listen_s)
        except TimeoutError:
            pass
        result.state = pc.connectionState
    finally:
        await pc.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return result


if __name__ == "__main__":
    # A caller in its own process, for tests that kill it mid-call (a peer that vanishes):
    # python -m tests.webrtc_client URL SECONDS — prints the call id once answered.
    import sys

    seconds = float(sys.argv[2])
    tone = (np.sin(np.arange(int(seconds * RATE)) * 2 * np.pi * 440 / RATE) * 3000)
    asyncio.run(call_bot(sys.argv[1], tone.astype(np.int16), listen_s=0.0,
                         on_answer=lambda call_id: print(call_id, flush=True)))
