"""memtrace: off by default; with PHASEGATE_MEMTRACE it names where memory grew."""

from __future__ import annotations

import time
import tracemalloc

from phasegate import memtrace

HOARD: list[bytes] = []


def test_off_unless_asked(monkeypatch) -> None:
    monkeypatch.delenv("PHASEGATE_MEMTRACE", raising=False)
    assert memtrace.start_from_env() is False


def test_the_growing_call_site_is_named(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PHASEGATE_MEMTRACE", str(tmp_path))
    monkeypatch.setenv("PHASEGATE_MEMTRACE_SECONDS", "0.2")
    monkeypatch.setenv("PHASEGATE_MEMTRACE_WARM", "1")
    assert memtrace.start_from_env() is True
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            HOARD.append(b"x" * 100_000)  # 1 MB every 0.02 s
            time.sleep(0.02)
            text = "".join(p.read_text() for p in tmp_path.glob("*.txt"))
            if text.count("sample ") >= 3:
                break
    finally:
        tracemalloc.stop()
        HOARD.clear()
    assert "traced" in text
    growth = text.split("sample 2", 1)[1]
    assert "test_memtrace.py" in growth and "+" in growth
