"""A real ``phasegate worker`` process for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from schemas.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    """Start, query and stop one worker of ``settings``' consumer group."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings.model_copy(update={"worker_port": free_port()})
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.settings.to_env()}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "phasegate.cli", "worker", "--loglevel", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def status(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.settings.worker_port}/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.load(resp)
        except OSError:
            return None

    def wait(self, predicate, timeout: float = 60.0) -> dict[str, Any]:
        """Poll /status until ``predicate(status)`` holds; fail with the log otherwise."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            status = self.status()
            if status is not None and predicate(status):
                return status
            time.sleep(0.25)
        raise AssertionError(f"timed out; last status {status}\n{self.tail()}")

    def wait_assigned(self, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait(lambda s: bool(s.get("assignment")), timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
