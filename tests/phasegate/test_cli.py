"""The shell's own messages: a missing broker, a bad setting (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

from phasegate.stack import free_port


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phasegate.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_without_a_broker_says_what_to_start():
    result = run("worker", PHASEGATE_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "No Kafka broker at" in result.stdout and "phasegate stack up" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_setting_names_the_field():
    result = run("worker", PHASEGATE_WINDOW_SECONDS="abc")
    assert result.returncode == 2
    assert "invalid settings" in result.stdout and "window_seconds" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_schema_export_writes_every_message_type(tmp_path):
    result = run("schema", "export", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.v1.schema.json"))) == 6
