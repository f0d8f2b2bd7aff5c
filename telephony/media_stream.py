"""A carrier's media-stream WebSocket as a call party (Twilio Media Streams).

A carrier that bridges a phone call to a WebSocket (Twilio ``<Connect><Stream>``) sends
JSON text messages: ``connected``, ``start`` (the stream's id, the call's id, the media
format), ``media`` (base64 8 kHz μ-law, 20 ms each), ``dtmf``, ``mark`` (a name we sent,
echoed once the carrier has played everything before it) and ``stop``. We send ``media``,
``mark`` after each stretch of speech, and ``clear`` on barge-in so the carrier drops the
audio it has buffered.

:class:`MediaStreamEdge` is the :class:`~switchboard.telephony.edge.MediaEdge` of such a
stream. pipecat's ``TwilioFrameSerializer`` is not used for media: its stream resampler
returns chunks of varying length (a call needs exact 20 ms frames), it lets a truncated
base64 payload raise out of ``deserialize``, and it knows nothing of ``start``, ``mark``
or ``stop``. The G.711 and 8↔16 kHz conversion is the SIP edge's (filter state carried
across frames, no clicks).

Bad input never raises into the call: a message that breaks the protocol (not JSON, not
an object, binary, media before ``start``, a second ``start``, an unsupported format)
ends the stream with close code 1008 and the reason, and the call ends with
``protocol_error``; a damaged payload, a repeated sequence number or an unknown event is
dropped, counted in :attr:`MediaStreamEdge.dropped` and reported once per kind through
``on_warning``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from switchboard.telephony.edge import FRAME_BYTES
from switchboard.telephony.paced import PacedFrames
from switchboard.telephony.sip.codec import Decoder, Encoder

log = logging.getLogger(__name__)

#: The only format a Twilio stream carries; anything else is refused at ``start``.
ENCODING = "audio/x-mulaw"
RATE = 8000
#: Inbound backlog kept (frames): a burst after a network stall is played out, a longer
#: one is dropped from the oldest so the caller is never heard late.
MAX_BACKLOG = 50
#: Outbound messages queued for a slow socket before audio is dropped (2 s of media).
MAX_OUTBOUND = 100
#: WebSocket close code for a protocol violation (RFC 6455 7.4.1).
POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003
#: Messages one stream sends at most (its writer's bound): 8 hours of media and marks.
MAX_MESSAGES = 8 * 3600 * 60


class MediaStreamError(Exception):
    """The peer broke the media-stream protocol; ``code`` closes the WebSocket."""

    def __init__(self, reason: str, code: int = POLICY_VIOLATION):
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass
class StreamStart:
    """What the ``start`` message says about the stream."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""
    tracks: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)


class MediaStreamEdge:
    """One carrier media stream, as the call's party.

    :meth:`open` reads up to the ``start`` message (raising :class:`MediaStreamError` on
    anything else); :meth:`run` then reads the rest of the stream until ``stop`` or the
    socket closes. ``on_error(reason)`` is called once when the peer breaks the protocol
    mid-call (before ``receive`` reports the party gone), ``on_warning(kind, detail)``
    once per kind of dropped message.
    """

    def __init__(self, ws: web.WebSocketResponse, peer: str = "media-stream:"):
        self.ws = ws
        self.peer = peer
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_hold: Callable[[bool], None] | None = None
        self.on_error: Callable[[str], None] | None = None
        self.on_warning: Callable[[str, str], None] | None = None
        self.start: StreamStart | None = None
        #: Why the stream ended ("stop", "closed", "protocol error: …", our reason).
        self.ended: str | None = None
        self.error: str | None = None
        #: Marks we sent and the carrier has not yet echoed; marks it has echoed.
        self.pending_marks: list[str] = []
        self.played_marks: list[str] = []
        self.clears = 0
        self.dropped: Counter[str] = Counter()
        self.frames_in = 0
        self._decoder = Decoder("PCMU")
        self._encoder = Encoder("PCMU")
        self._pcm = bytearray()
        self._in = PacedFrames(MAX_BACKLOG)
        self._gone = asyncio.Event()
        self._out: asyncio.Queue[str] = asyncio.Queue(MAX_OUTBOUND)
        self._writer: asyncio.Task | None = None
        self._talking = False
        self._marks_sent = 0
        self._last_seq = -1
        self._warned: set[str] = set()

    # --- reading the carrier's messages

    async def open(self, timeout: float = 10.0) -> StreamStart:
        """Read ``connected`` and ``start``; the stream's description."""
        deadline = time.monotonic() + timeout
        # Bounded: a peer may send a few messages (connected, a stray mark) before start.
        for _ in range(16):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
                raise MediaStreamError("the stream closed before start", 1000)
            message = _parse(msg)
            event = message["event"]
            if event == "connected":
                continue
            if event == "start":
                self.start = _start(message)
                self.peer = f"twilio:{self.start.call_sid or self.start.stream_sid}"
                self._writer = asyncio.get_running_loop().create_task(
                    self._write(), name="media-stream:write")
                return self.start
            if event in ("media", "dtmf", "mark", "stop"):
                raise MediaStreamError(f"{event} before start")
            self._drop("unknown_event", f"unknown event {event!r}")
        raise MediaStreamError(f"no start message within {timeout:.0f} s")

    async def run(self) -> None:
        """Read the stream until ``stop``, the socket's end, or a protocol error."""
        try:
            async for msg in self.ws:
                if self._gone.is_set():
                    break
                try:
                    if self._handle(_parse(msg)):
                        break
                except MediaStreamError as exc:
                    self._fail(exc)
                    await self._close_ws(exc.code, exc.reason)
                    break
        except Exception as exc:  # noqa: BLE001 - a broken socket is a party gone
            log.info("media stream %s: read failed: %s", self.peer, exc)
        finally:
            self._finish("closed")

    def _handle(self, message: dict) -> bool:
        """One message after ``start``; True at the end of the stream."""
        event = message["event"]
        if event == "media":
            self._media(message)
        elif event == "mark":
            name = _field(message, "mark", "name")
            if isinstance(name, str) and name in self.pending_marks:
                self.pending_marks.remove(name)
                self.played_marks.append(name)
            else:
                self._drop("unknown_mark", f"mark {name!r} was never sent")
        elif event == "dtmf":
            digit = _field(message, "dtmf", "digit")
            if isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
                if self.on_dtmf is not None:
                    self.on_dtmf(digit)
            else:
                self._drop("bad_dtmf", f"dtmf digit {digit!r}")
        elif event == "stop":
            self._finish("stop")
            return True
        elif event in ("start", "connected"):
            raise MediaStreamError(f"{event} after start")
        else:
            self._drop("unknown_event", f"unknown event {event!r}")
        return False

    def _media(self, message: dict) -> None:
        media = message.get("media")
        if not isinstance(media, dict):
            self._drop("bad_media", "media without a media object")
            return
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return  # a both_tracks stream also echoes our own audio: not the caller's
        seq = _int(message.get("sequenceNumber"))
        if seq is not None:
            if seq <= self._last_seq:
                self._drop("out_of_order", f"sequence number {seq} after {self._last_seq}")
                return
            self._last_seq = seq
        payload = media.get("payload")
        try:
            if not isinstance(payload, str):
                raise ValueError("payload is not a string")
            ulaw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            self._drop("bad_payload", f"media payload: {exc}")
            return
        if not ulaw:
            return
        self._pcm += self._decoder.decode(ulaw)
        while len(self._pcm) >= FRAME_BYTES:
            self._in.push(bytes(self._pcm[:FRAME_BYTES]))
            del self._pcm[:FRAME_BYTES]
            self.frames_in += 1

    def _drop(self, kind: str, detail: str) -> None:
        self.dropped[kind] += 1
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("media stream %s: dropped: %s", self.peer, detail)
            if self.on_warning is not None:
                self.on_warning(kind, detail)

    def _fail(self, exc: MediaStreamError) -> None:
        if self.error is None:
            self.error = exc.reason
            log.warning("media stream %s: %s", self.peer, exc.reason)
            if self.on_error is not None:
                self.on_error(exc.reason)

    def _finish(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason if self.error is None else f"protocol error: {self.error}"
        self._gone.set()
        self._in.end()

    def media_stats(self) -> dict[str, Any]:
        """How the stream's media went, for the call record."""
        return {"frames_in": self.frames_in, "dropped": dict(self.dropped),
                "marks_sent": self._marks_sent, "marks_played": len(self.played_marks),
                "clears": self.clears}

    # --- the MediaEdge seam

    async def receive(self) -> bytes | None:
        """The caller's next 20 ms, one per 20 ms; waits (without advancing) in a gap."""
        return await self._in.pop()

    def send(self, pcm: bytes) -> None:
        """Our 20 ms toward the caller: media while there is sound, a mark after it.

        Silence is not sent (the carrier plays silence when its buffer is empty), so a
        mark after each stretch of sound tells us when the carrier has played it.
        """
        if self.start is None or self._gone.is_set() or len(pcm) != FRAME_BYTES:
            return
        if not pcm.strip(b"\0"):
            if self._talking:
                self._talking = False
                self._marks_sent += 1
                name = f"spurt-{self._marks_sent}"
                if self._put({"event": "mark", "streamSid": self.start.stream_sid,
                              "mark": {"name": name}}):
                    self.pending_marks.append(name)
            return
        self._talking = True
        payload = base64.b64encode(self._encoder.encode(pcm)).decode("ascii")
        self._put({"event": "media", "streamSid": self.start.stream_sid,
                   "media": {"payload": payload}})

    def clear(self) -> None:
        """Barge-in: the carrier drops the audio it holds (and our queue drops its own)."""
        if self.start is None or self._gone.is_set():
            return
        kept = []
        while not self._out.empty():
            message = self._out.get_nowait()
            if '"event": "media"' not in message:
                kept.append(message)
        for message in kept:
            self._out.put_nowait(message)
        self._talking = False
        self.clears += 1
        self._put({"event": "clear", "streamSid": self.start.stream_sid})

    async def close(self, reason: str) -> None:
        """End the stream from our side: send what is queued, close the socket."""
        if self.ended is None:
            self.ended = reason
        self._gone.set()
        self._in.end()
        if self._writer is not None and not self._writer.done():
            try:
                await asyncio.wait_for(self._out.join(), 1.0)
            except TimeoutError:
                pass
            self._writer.cancel()
        await self._close_ws(1000, reason)

    # --- writing

    def _put(self, message: dict) -> bool:
        try:
            self._out.put_nowait(json.dumps(message))
            return True
        except asyncio.QueueFull:
            self.dropped["outbound"] += 1  # a slow carrier loses audio, the call goes on
            return False

    async def _write(self) -> None:
        try:
            for _ in range(MAX_MESSAGES):  # a stream's lifetime: 8 hours at 50 a second
                message = await self._out.get()
                try:
                    if not self.ws.closed:
                        await self.ws.send_str(message)
                finally:
                    self._out.task_done()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a vanished peer; the reader ends the leg
            log.info("media stream %s: write failed: %s", self.peer, exc)
            self._gone.set()
            self._in.end()

    async def _close_ws(self, code: int, reason: str) -> None:
        if not self.ws.closed:
            try:
                await asyncio.wait_for(
                    self.ws.close(code=code, message=reason.encode()[:120]), 2.0)
            except Exception:  # noqa: BLE001 - the peer may be gone already
                pass


def _parse(msg) -> dict:
    """A WebSocket message as a media-stream message object, or a protocol error."""
    if msg.type is WSMsgType.BINARY:
        raise MediaStreamError("binary frames are not part of the media stream",
                               UNSUPPORTED_DATA)
    if msg.type is not WSMsgType.TEXT:
        raise MediaStreamError(f"unexpected WebSocket message type {msg.type.name}")
    try:
        message = json.loads(msg.data)
    except ValueError:
        raise MediaStreamError("a message that is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise MediaStreamError("a message without an event")
    return message


def _start(message: dict) -> StreamStart:
    start = message.get("start")
    if not isinstance(start, dict):
        raise MediaStreamError("start without a start object")
    sid = start.get("streamSid") or message.get("streamSid")
    if not isinstance(sid, str) or not sid:
        raise MediaStreamError("start without a streamSid")
    fmt = start.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise MediaStreamError("start with a malformed mediaFormat")
    encoding = fmt.get("encoding", ENCODING)
    rate = _int(fmt.get("sampleRate", RATE))
    channels = _int(fmt.get("channels", 1))
    if encoding != ENCODING or rate != RATE or channels != 1:
        raise MediaStreamError(f"unsupported media format {encoding} {rate} Hz x{channels}")
    custom = start.get("customParameters")
    tracks = start.get("tracks")
    return StreamStart(
        stream_sid=sid, call_sid=str(start.get("callSid", ""))[:64],
        account_sid=str(start.get("accountSid", ""))[:64],
        tracks=[str(t) for t in tracks] if isinstance(tracks, list) else [],
        custom=custom if isinstance(custom, dict) else {})


def _field(message: dict, key: str, name: str) -> Any:
    value = message.get(key)
    return value.get(name) if isinstance(value, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
