"""A real ``phasegate sink`` process for integration tests, and waiting for its rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from schemas.settings import Settings


class SinkProcess:
    """``phasegate sink`` on ``settings``, its output in ``log``."""

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.settings, self.log, self.env = settings, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SinkProcess:
        env = {**os.environ, **self.settings.to_env(), **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "phasegate.cli", "sink"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0, *procs) -> None:
    """Poll ``check`` until true; fail with the processes' log tails otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # the store may be down for a moment: keep polling
            pass
        time.sleep(0.2)
    tails = "\n---\n".join(p.tail() for p in procs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")
