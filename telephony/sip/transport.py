"""sipua's transport layer with framing over TCP and hardened parsing over UDP.

sipua's TCP channel parses each ``data_received`` chunk as one whole message, but TCP is a
byte stream: a message may arrive in pieces, or two in one read. :class:`FramedTcpChannel`
reassembles messages by Content-Length (RFC 3261 18.3). Its UDP channel decodes every
datagram for a log line even when logging is off and lets a non-UTF-8 datagram raise;
:class:`HardenedUdpChannel` drops and counts such datagrams instead. Responses on TCP go
back on the connection the request came in on (``rport`` forced, as sipua does for
WebSockets), since a phone's listening port is not the port it connected from.
"""

from __future__ import annotations

import asyncio
import logging
import re

import sipmessage
from sipua import TransportAddress, TransportLayer
from sipua.transport import (
    TcpTransportChannel,
    TransportChannel,
    UdpTransportChannel,
    update_request_via,
)
from sipua.utils import ANY_HOST, ANY_PORT

logger = logging.getLogger(__name__)

#: Larger messages are refused: a SIP message is a few kilobytes, this bounds memory.
MAX_MESSAGE_BYTES = 65536
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.I | re.M)


def parse_datagram(data: bytes) -> sipmessage.Message | None:
    """A message from one datagram, or None (logged) if it cannot be parsed.

    A body shorter than its Content-Length is refused; extra bytes after the declared
    body are cut off (RFC 3261 18.3).
    """
    try:
        message = sipmessage.Message.parse(data)
    except Exception as exc:  # ValueError mostly; any parse failure is the peer's fault
        logger.info("dropped unparseable SIP datagram (%d bytes): %s", len(data), exc)
        return None
    declared = message.headers.get("Content-Length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0 or length > len(message.body):
            # Parsed, but answered 400 by the transaction layer (which can build a reply).
            message.defect = f"Content-Length {declared} but {len(message.body)} bytes"  # type: ignore[union-attr]
        else:
            message.body = message.body[:length]
    return message


class HardenedUdpChannel(UdpTransportChannel):
    """sipua's UDP channel, tolerant of garbage datagrams."""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        if not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 CRLF ping)
        message = parse_datagram(data)
        if message is None:
            return
        if isinstance(message, sipmessage.Request):
            try:
                update_request_via(message, addr[0], addr[1])
            except Exception as exc:
                logger.info("dropped request with a bad Via from %s: %s", addr, exc)
                return
        self._message_handler(self, message)


class FramedTcpChannel(TcpTransportChannel):
    """sipua's TCP channel with stream reassembly by Content-Length."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        self._buffer += data
        while True:
            # CRLFs between messages are keep-alives.
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    self._abort("header section too large")
                return
            head = bytes(self._buffer[:end])
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            total = end + 4 + length
            if total > MAX_MESSAGE_BYTES:
                self._abort("message too large")
                return
            if len(self._buffer) < total:
                return
            raw = bytes(self._buffer[:total])
            del self._buffer[:total]
            message = parse_datagram(raw)
            if message is None:
                continue  # framing held, so the stream can carry on
            if isinstance(message, sipmessage.Request) and self.remote_address is not None:
                try:
                    update_request_via(
                        message, self.remote_address.host, self.remote_address.port, force=True
                    )
                except Exception as exc:
                    logger.info("dropped TCP request with a bad Via: %s", exc)
                    continue
            self._message_handler(self, message)

    def _abort(self, why: str) -> None:
        logger.info("closing TCP connection from %s: %s", self.remote_address, why)
        self._buffer.clear()
        if self._transport is not None:
            self._transport.close()


class SipTransportLayer(TransportLayer):
    """sipua's transport layer using the channels above; handler errors are contained."""

    async def listen(self, address: TransportAddress) -> None:
        """Listen on UDP or TCP (other protocols are sipua's)."""
        loop = asyncio.get_running_loop()
        kwargs = dict(
            connect_handler=self._connect_handler,
            disconnect_handler=self._disconnect_handler,
            message_handler=self._message_handler,
        )
        if address.protocol == "tcp":
            server = await loop.create_server(
                lambda: FramedTcpChannel(**kwargs), host=address.host, port=address.port
            )
            self._tcp_servers.add(server)
        elif address.protocol == "udp":
            await loop.create_datagram_endpoint(
                lambda: HardenedUdpChannel(**kwargs),  # type: ignore[arg-type]
                local_addr=(address.host, address.port),
            )
        else:
            await super().listen(address)

    async def _acquire_channel(self, destination: TransportAddress) -> TransportChannel:
        # sipua's lookup, except that new TCP connections get the framing channel.
        for channel in self._channels:
            remote = channel.remote_address
            if (
                remote is not None
                and remote.protocol == destination.protocol
                and remote.host in (destination.host, ANY_HOST)
                and remote.port in (destination.port, ANY_PORT)
            ):
                return channel
        if destination.protocol != "tcp":
            raise ConnectionError("No suitable transport found")
        loop = asyncio.get_running_loop()
        _, channel = await loop.create_connection(
            lambda: FramedTcpChannel(
                connect_handler=self._connect_handler,
                disconnect_handler=self._disconnect_handler,
                message_handler=self._message_handler,
            ),
            host=destination.host,
            port=destination.port,
        )
        return channel

    async def _handle_message(self, message: sipmessage.Message) -> None:
        try:
            await super()._handle_message(message)
        except Exception:  # one bad message must not affect other calls
            logger.exception("SIP message handling failed")
