"""Freed memory goes back to the system: a real process, its resident size measured."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phasegate import allocator

PEAK = """
import random, sys, threading, time
from phasegate import allocator

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

survivors, peak = [], []

def catch_up():  # a backlog decoded at once on another thread; a few objects outlive it
    backlog = [bytes(random.randint(600, 4000)) for _ in range(100_000)]
    peak.append(rss())
    survivors.extend(backlog[::50])

if sys.argv[1] == "tame":
    assert allocator.tame(seconds=0.2)
start = rss()
thread = threading.Thread(target=catch_up)
thread.start()
thread.join()
if sys.argv[1] == "trim":
    assert allocator.trim()
if sys.argv[1] == "tame":
    time.sleep(1)
print(start, peak[0], rss())
"""


def resident(mode: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", PEAK, mode], capture_output=True, text=True, check=True
    )
    start, peak, end = map(int, out.stdout.split())
    return start, peak, end


@pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc (malloc_trim)")
def test_trim_hands_back_the_pages_a_peak_left_behind() -> None:
    start, peak, kept = resident("keep")
    assert peak - start > 150 and kept - start > 150  # glibc keeps the peak's pages
    start, peak, trimmed = resident("trim")
    assert peak - start > 150 and trimmed - start < 40


@pytest.mark.skipif(allocator._glibc() is None, reason="needs glibc (malloc_trim)")
def test_tame_trims_by_itself() -> None:
    start, peak, end = resident("tame")
    assert peak - start > 150 and end - start < 40
