"""``phasegate worker``, ``sink`` and ``notify`` as real subprocesses, their output in a log."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from phasegate.stack import free_port
from schemas.settings import Settings

NOTIFY_ATTEMPTS = 3
"""How often ``NotifyProcess`` tries each notification."""


class PhasegateProcess:
    """``python -m phasegate.cli ARGS`` on ``settings`` (plus ``env``), output in ``log``."""

    args: list[str] = []

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        self.settings, self.log, self.env = settings, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        env = {**os.environ, **self.settings.to_env(), **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "phasegate.cli", *self.args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig``, kill after ``timeout``; the exit code (None: never started)."""
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

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class WorkerProcess(PhasegateProcess):
    """One worker of ``settings``' consumer group, its ``/status`` on a free port."""

    args = ["worker", "--loglevel", "warning"]

    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        super().__init__(settings.model_copy(update={"worker_port": free_port()}), log, **env)

    def status(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.settings.worker_port}/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.load(resp)
        except OSError:
            return None

    def wait(self, predicate: Callable[[dict], bool], timeout: float = 60.0) -> dict[str, Any]:
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


class SinkProcess(PhasegateProcess):
    """``phasegate sink``; ``env`` may inject a fault (``PHASEGATE_SINK_FAULT``)."""

    args = ["sink"]


class NotifyProcess(PhasegateProcess):
    """``phasegate notify --webhook URL``; its counters read from the log at exit."""

    def __init__(self, settings: Settings, url: str, log: Path, timeout: float) -> None:
        super().__init__(settings, log)
        self.args = ["notify", "--webhook", url, "--timeout", str(timeout)]
        self.args += ["--attempts", str(NOTIFY_ATTEMPTS), "--group", log.stem]

    def counters(self) -> dict[str, int | None]:
        """Stop it; what it sent, failed and retried, and its exit code."""
        code = self.stop(timeout=60)
        found = re.search(r"sent (\d+), failed (\d+), retries (\d+)", self.tail(1000))
        if found is None:
            return {"exit": code}
        sent, failed, retries = (int(g) for g in found.groups())
        return {"sent": sent, "failed": failed, "retries": retries, "exit": code}


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
