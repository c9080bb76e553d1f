"""A managed background process: its own state folder, pid file and log file.

The process is started detached (a new session) so it outlives the command that started
it. Its pid file is trusted only while ``/proc/PID`` runs exactly the command line we
launched and was started when we recorded: a stale pid file is removed, and a stranger
that happens to hold the pid or the port is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from phasegate.stack.errors import StartFailed

Probe = Callable[[], None]  # returns when the service answers, raises otherwise


class State(StrEnum):
    READY = "running"
    STARTING = "running, not ready"
    STOPPED = "stopped"
    FOREIGN = "port taken by a process we did not start"


@dataclass(frozen=True)
class Status:
    state: State
    pid: int | None = None
    detail: str = ""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (held together while the OS picks them)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1] if raw else None


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks after boot), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (so it leaves no zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class ManagedProcess:
    """One service process under ``folder`` (files ``pid``, ``launch.json``, ``log``)."""

    name: str
    argv: Sequence[str]
    folder: Path
    host: str
    ports: Sequence[int]
    probe: Probe
    env: Mapping[str, str] | None = None
    prepare: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.folder / "pid"

    @property
    def launch_file(self) -> Path:
        return self.folder / "launch.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "log"

    def pid(self) -> int | None:
        """The pid of the process we started, if it still runs; cleans a stale pid file."""
        try:
            pid = int(self.pid_file.read_text().strip())
            launch = json.loads(self.launch_file.read_text())
        except (OSError, ValueError):
            self._forget()
            return None
        _reap(pid)
        if _proc_cmdline(pid) == launch.get("argv") and _proc_start_ticks(pid) == launch.get(
            "start_ticks"
        ):
            return pid
        self._forget()
        return None

    def is_ready(self) -> bool:
        try:
            self.probe()
        except Exception:
            return False
        return True

    def status(self) -> Status:
        """The truth: running and ready, running but not ready, stopped, or port taken."""
        pid = self.pid()
        if pid is not None:
            return Status(State.READY if self.is_ready() else State.STARTING, pid)
        taken = [p for p in self.ports if port_open(self.host, p)]
        if taken:
            ports = ", ".join(str(p) for p in taken)
            return Status(State.FOREIGN, None, f"{self.host}:{ports} in use")
        return Status(State.STOPPED)

    def start(self, timeout: float = 20.0) -> Status:
        """Start unless running; wait until ready. Raises StartFailed with the log's tail."""
        status = self.status()
        if status.state is not State.STOPPED:
            return status
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.prepare:
            self.prepare()
        env = {**os.environ, **self.env} if self.env else None
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=env,
                start_new_session=True,
            )
        launch = {"argv": list(self.argv), "start_ticks": _proc_start_ticks(proc.pid)}
        self.launch_file.write_text(json.dumps(launch))
        self.pid_file.write_text(f"{proc.pid}\n")
        return self._wait_ready(proc, timeout)

    def _wait_ready(self, proc: subprocess.Popen, timeout: float) -> Status:
        deadline = time.monotonic() + timeout
        while True:
            code = proc.poll()
            if code is not None:
                self._forget()
                raise StartFailed(f"{self.name} exited with code {code}", self.log_tail())
            if self.is_ready():
                return Status(State.READY, proc.pid)
            if time.monotonic() > deadline:
                self.stop()
                raise StartFailed(f"{self.name} not ready after {timeout:.0f} s", self.log_tail())
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True if a process of ours was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):  # it may end on its own meanwhile
            os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5.0)
        self._forget()
        self._wait_ports_closed(timeout)
        return True

    def _wait_ports_closed(self, timeout: float) -> None:
        """A multi-threaded process (node) shows as a zombie while its threads still hold
        its sockets: wait until its ports are free too, so a restart can bind them."""
        deadline = time.monotonic() + timeout
        while any(port_open(self.host, p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.02)

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if _proc_start_ticks(pid) is None:
                return True
            time.sleep(0.02)
        return False

    def _forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        self.launch_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
