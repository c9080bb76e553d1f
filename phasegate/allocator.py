"""Give freed memory back to the system after a peak.

A long-running process peaks when it catches up after a stall (a backlog of messages
decoded at once). CPython frees those objects, but glibc keeps their pages wherever a
survivor sits among them, in one arena per allocating thread (the sink, its insert
thread and kafka-python's IO thread each have one), so the resident size rises in steps
and stays up. ``tame`` caps the arenas (``M_ARENA_MAX``, as ``MALLOC_ARENA_MAX`` does)
and hands free pages back every ``seconds`` (``malloc_trim``). Where the C library is
not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import threading
import time

M_ARENA_MAX = -8  # mallopt parameter, <malloc.h>


_tamed = threading.Lock()


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")):
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


def trim() -> bool:
    """Hand the free pages of every arena back now; False where that is not possible."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def tame(seconds: float = 60.0, arenas: int = 2) -> bool:
    """Cap glibc's arenas at ``arenas`` and trim every ``seconds`` from a daemon thread;
    False where not glibc or when done before in this process.

    Call it first thing in a long-running command, before other threads start.
    """
    libc = _glibc()
    if libc is None or not _tamed.acquire(blocking=False):
        return False  # not glibc, or tamed already (one trimming thread a process)
    libc.mallopt(M_ARENA_MAX, arenas)

    def every() -> None:
        while True:
            time.sleep(seconds)
            libc.malloc_trim(0)

    threading.Thread(target=every, name="malloc-trim", daemon=True).start()
    return True
