"""Where the sink's time goes: CPU per message of each step, on the same fetched records.

Each step is timed with the CPU clock of the thread doing it (so other processes on a
shared machine do not count), on the records of one aiokafka fetch of the results topic,
in fetched batches as the Sink sees them; the fetch itself by this process's CPU clock
(aiokafka's background fetch task runs on the same loop); the broker's and the server's
share come from their ``/proc`` CPU counters. Minimum of ``runs`` runs (the least
disturbed).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from schemas import Result
from schemas.codec import decode_many
from schemas.fastcodec import fast_decode_batch, fast_decode_many
from schemas.settings import Settings
from sinks import ddl
from sinks.batch import Batch, entry_columns, refuse_times
from sinks.ledger import Ledger
from sinks.migrations import migrate
from sinks.store import Store

Polls = list[tuple[object, list]]


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds of this process (all threads), or of process ``pid``."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_options(settings: Settings, name: str) -> dict[str, object]:
    """A fresh consumer group ``name-...`` reading the results topic from its start."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "group_id": f"{name}-{uuid.uuid4().hex[:8]}",
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
    }


def fetch(settings: Settings, n: int) -> tuple[Polls, float]:
    """``n`` records as the Sink fetches them (per ``getmany`` and partition), and the CPU
    seconds this process spent fetching them."""
    return asyncio.run(_getmany(settings, n))


async def _getmany(settings: Settings, n: int) -> tuple[Polls, float]:
    consumer = AIOKafkaConsumer(settings.topics.results, **group_options(settings, "steps"))
    await consumer.start()
    polls: Polls = []
    cpu = 0.0
    try:
        while sum(len(m) for _, m in polls) < n:
            start = process_cpu()
            got = await consumer.getmany(timeout_ms=200, max_records=5000)
            if got:
                cpu += process_cpu() - start
            polls += list(got.items())
    finally:
        await consumer.stop()
    return polls, cpu


def _least(step: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.thread_time()
        step()
        best = min(best, time.thread_time() - start)
    return best


def step_costs(settings: Settings, store: Store, n: int, runs: int) -> list[tuple[str, float]]:
    """(step, CPU microseconds per message) for the sink's steps after the fetch."""
    polls, fetch_cpu = fetch(settings, n)
    values = [[m.value for m in messages] for _, messages in polls]
    decoded = [fast_decode_batch(v, Result) for v in values]
    batch = Batch()

    def add() -> None:
        now = time.time()
        for (partition, messages), events in zip(polls, decoded, strict=True):
            events = refuse_times(events, now, settings.max_future_seconds)
            batch.add_many(partition, [m.offset for m in messages], events, Result)

    def ledger() -> None:
        book = Ledger()
        for table, entries in batch.tables():
            book.remember(table, book.select(table, entries))

    add()
    ((table, entries),) = batch.tables()
    columns = entry_columns(table, entries)
    database = f"s{uuid.uuid4().hex[:8]}"
    migrate(store, database)

    def insert() -> None:
        store.insert(f"{database}.{table.name}", columns)  # the store copies what it changes

    steps = {
        "fast_decode_batch (Structs), per fetched batch": lambda: [
            fast_decode_batch(v, Result) for v in values
        ],
        "ts check + batch": lambda: (batch.clear(), add()),
        "ledger select + remember": ledger,
        "columns": lambda: entry_columns(ddl.RESULTS, entries),
        "clickhouse-driver: serialize and send": insert,
    }
    out = [("aiokafka getmany fetch", fetch_cpu / n * 1e6)]
    out += [(name, _least(fn, runs) / n * 1e6) for name, fn in steps.items()]
    out.append(("the sink's steps, summed", sum(us for _, us in out)))
    out.append(("for comparison: fast_decode_many (models)", _least(
        lambda: [fast_decode_many(v, Result) for v in values], runs) / n * 1e6))  # fmt: skip
    out.append(("for comparison: decode_many (pydantic)", _least(
        lambda: [decode_many(v, Result) for v in values], runs) / n * 1e6))  # fmt: skip
    store.execute(f"DROP DATABASE {database}")
    return out
