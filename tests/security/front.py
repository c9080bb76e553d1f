"""A front for a Kafka broker that cannot secure itself (Tansu 0.6): TLS, SASL PLAIN, both.

:class:`KafkaFront` listens on its own port and forwards to the broker, which advertises
the front's port so that every client connection passes through it. With an SSL context
it terminates TLS (as stunnel or a load balancer would). With a login it speaks the
broker side of SASL PLAIN (KIP-43 and KIP-152: SaslHandshake, then SaslAuthenticate
v0-v2): ApiVersions is forwarded, the login is checked, and only an accepted connection
is piped on to the broker; a refused one gets error 58 (SASL_AUTHENTICATION_FAILED).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _put_uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _skip_tags(data: bytes, at: int) -> int:
    count, at = _uvarint(data, at)
    for _ in range(count):
        _, at = _uvarint(data, at)
        size, at = _uvarint(data, at)
        at += size
    return at


def parse_request(frame: bytes) -> tuple[int, int, int, int]:
    """(api key, version, correlation id, offset of the body) of a request frame."""
    api_key, version, correlation = struct.unpack_from(">hhi", frame)
    (client_id,) = struct.unpack_from(">h", frame, 8)
    at = 10 + max(client_id, 0)
    if api_key == SASL_AUTHENTICATE and version >= 2:  # flexible: a tagged-fields header
        at = _skip_tags(frame, at)
    return api_key, version, correlation, at


def auth_bytes(frame: bytes, version: int, at: int) -> bytes:
    if version >= 2:
        size, at = _uvarint(frame, at)
        return frame[at : at + size - 1]
    (size,) = struct.unpack_from(">i", frame, at)
    return frame[at + 4 : at + 4 + size]


def handshake_response(correlation: int, error: int) -> bytes:
    mechanism = b"PLAIN"
    return struct.pack(">ihih", correlation, error, 1, len(mechanism)) + mechanism


def authenticate_response(correlation: int, version: int, error: int, message: str) -> bytes:
    text = message.encode()
    if version >= 2:
        return (
            struct.pack(">ib", correlation, 0)
            + struct.pack(">h", error)
            + (_put_uvarint(len(text) + 1) + text if error else b"\x00")
            + b"\x01"  # empty auth bytes
            + struct.pack(">q", 0)
            + b"\x00"
        )
    body = struct.pack(">ih", correlation, error)
    body += struct.pack(">h", len(text)) + text if error else struct.pack(">h", -1)
    body += struct.pack(">i", 0)
    return body + (struct.pack(">q", 0) if version >= 1 else b"")


async def _frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _send(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(struct.pack(">i", len(payload)) + payload)


class KafkaFront:
    """``host:port`` in front of the broker at ``host:target``, in a thread of its own."""

    def __init__(
        self,
        host: str,
        port: int,
        target: int,
        context: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.target = host, port, target
        self.context, self.login = context, login
        self.refused = 0  # logins refused so far
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None

    def start(self) -> KafkaFront:
        self.thread.start()
        serve = asyncio.start_server(self._handle, self.host, self.port, ssl=self.context)
        self.server = asyncio.run_coroutine_threadsafe(serve, self.loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.close()
            return
        try:
            if self.login is not None and not await self._authenticate(
                reader, writer, up_reader, up_writer
            ):
                raise ConnectionError("login refused")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, struct.error):
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _authenticate(self, reader, writer, up_reader, up_writer) -> bool:
        """Serve ApiVersions (from the broker) and the SASL PLAIN exchange; True if the
        login was accepted."""
        while True:
            frame = await _frame(reader)
            api_key, version, correlation, at = parse_request(frame)
            if api_key == API_VERSIONS:
                _send(up_writer, frame)
                _send(writer, await _frame(up_reader))
            elif api_key == SASL_HANDSHAKE:
                (size,) = struct.unpack_from(">h", frame, at)
                plain = frame[at + 2 : at + 2 + size] == b"PLAIN"
                error = 0 if plain else UNSUPPORTED_SASL_MECHANISM
                _send(writer, handshake_response(correlation, error))
                if not plain:
                    return False
            elif api_key == SASL_AUTHENTICATE:
                _, user, password = auth_bytes(frame, version, at).split(b"\x00", 2)
                ok = self.login == (user.decode(), password.decode())
                self.refused += not ok
                error, message = (0, "") if ok else (SASL_AUTHENTICATION_FAILED, "bad login")
                _send(writer, authenticate_response(correlation, version, error, message))
                await writer.drain()
                return ok
            else:
                return False  # anything else before a login
            await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
