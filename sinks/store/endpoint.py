"""A chdb folder served by the process holding it to this user's other processes.

The holder listens on a Linux abstract Unix socket named after the folder (no file to
go stale: the name goes with the process) and answers only processes of its own user
(``SO_PEERCRED``). A reader sends a statement, the holder runs it on a session of its
own and sends back the result as an Arrow stream, or the error's text. Frames are an
8-byte big-endian length, then the bytes; an answer's first byte is ``0`` (result) or
``1`` (error).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, Self

from sinks.store.arrow import ArrowStore
from sinks.store.base import StoreError, StoreUnavailable

_LENGTH = struct.Struct(">Q")
_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid
_RESULT, _ERROR = b"\0", b"\1"
TIMEOUT = 600.0
"""Seconds a reader waits for one answer."""


class Runner(Protocol):
    def run(self, sql: str) -> bytes: ...

    def close(self) -> None: ...


def address(path: Path) -> str:
    """The abstract socket name of the folder at ``path``."""
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    return f"\0phasegate-store-{digest}"


def peer(sock: socket.socket) -> tuple[int, int]:
    """The pid and uid of the process at the other end."""
    pid, uid, _ = _CREDENTIALS.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    )
    return pid, uid


def _send(sock: socket.socket, data: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(sock: socket.socket) -> bytes | None:
    """One frame, or None once the other end has closed."""
    head = _exactly(sock, _LENGTH.size)
    return None if head is None else _exactly(sock, _LENGTH.unpack(head)[0])


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        if peer(self.request)[1] != os.getuid():
            return
        self.server.readers.add(self.request)
        try:
            while (sql := _receive(self.request)) is not None:
                try:
                    answer = _RESULT + self.server.runner.run(sql.decode())
                except StoreError as exc:
                    answer = _ERROR + str(exc).encode()
                _send(self.request, answer)
        except OSError:
            pass  # the reader went away, or the endpoint closes
        finally:
            self.server.readers.discard(self.request)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str, runner: Runner) -> None:
        self.runner = runner
        self.readers: set[socket.socket] = set()
        super().__init__(name, _Handler)


class Endpoint:
    """Serves statements on a folder through ``runner`` until ``close``."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    @classmethod
    def start(cls, path: Path, runner: Runner) -> Self | None:
        """Serve ``path``; None (and ``runner`` closed) if this process serves it already."""
        try:
            return cls(_Server(address(path), runner))
        except OSError:
            runner.close()
            return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for sock in list(self._server.readers):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join()
        self._server.runner.close()


class Reader(ArrowStore):
    """The store read through the process holding its folder (``pid``): queries and
    statements, not inserts."""

    def __init__(self, path: Path, sock: socket.socket, pid: int) -> None:
        self.path, self.pid = Path(path), pid
        self._sock: socket.socket | None = sock
        self._lock = threading.Lock()

    def _run(self, sql: str) -> bytes:
        with self._lock:
            if self._sock is None:
                raise StoreError("the local store is closed")
            try:
                _send(self._sock, sql.encode())
                answer = _receive(self._sock)
            except OSError:
                answer = None
        if answer is None:
            raise StoreUnavailable(
                f"the process holding the local store at {self.path} (pid {self.pid}) stopped "
                "answering: run the command again."
            )
        if answer[:1] == _ERROR:
            raise StoreError(answer[1:].decode())
        return answer[1:]

    def insert(self, table: str, columns: Mapping[str, Sequence]) -> int:
        raise StoreError(
            f"the local store at {self.path} is held by pid {self.pid}, which serves reads: "
            "stop it to write here"
        )

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def connect(path: Path) -> Reader | None:
    """A reader of the folder at ``path`` if a process of this user serves it, else None."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address(path))
        pid, uid = peer(sock)
    except OSError:
        sock.close()
        return None
    if uid != os.getuid():
        sock.close()
        return None
    sock.settimeout(TIMEOUT)
    return Reader(path, sock, pid)
