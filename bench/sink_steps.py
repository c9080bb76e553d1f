"""Where the sink's time goes: CPU per message of each step, on the same fetched records.

Each step is timed with the CPU clock of the thread doing it (so other processes on a
shared machine do not count), on the messages of one confluent-kafka read of the results
topic, in fetched batches as the Sink sees them; the fetch itself (``consume``, grouped
by partition, values and offsets read) by this process's CPU clock, librdkafka's threads
included; the broker's and the server's share come from their ``/proc`` CPU counters.
Minimum of ``runs`` runs (the least disturbed).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Message

from bench.common import process_cpu
from schemas import Result
from schemas.codec import decode_many
from schemas.fastcodec import fast_decode_batch, fast_decode_many
from schemas.kafka_security import librdkafka_options
from schemas.settings import Settings
from sinks import ddl, rollups
from sinks.batch import Batch, entry_columns, refuse_times, seldom_collected
from sinks.consumer import Partition, by_partition
from sinks.ledger import Ledger
from sinks.migrations import migrate
from sinks.rollups import STEPS
from sinks.store import Store

Polls = list[tuple[Partition, list[bytes], list[int]]]  # per fetch and partition


def group_options(settings: Settings, name: str) -> dict[str, object]:
    """A fresh consumer group ``name-...`` reading from the start (librdkafka's names)."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": f"{name}-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        **librdkafka_options(settings),
    }


def fetch(settings: Settings, n: int) -> tuple[Polls, float]:
    """``n`` messages as the Sink fetches them (per ``consume`` and partition), and the CPU
    seconds this process spent fetching them."""
    consumer = Consumer(group_options(settings, "steps"))
    consumer.subscribe([settings.topics.results])
    polls: Polls = []
    cpu, seen = 0.0, 0
    try:
        while seen < n:
            start = process_cpu()
            got = consumer.consume(5000, timeout=0.2)
            groups, _ = by_partition(got)
            read = [
                (p, list(map(Message.value, run)), list(map(Message.offset, run)))
                for p, run in groups.items()
            ]
            if got:
                cpu += process_cpu() - start
            polls += read
            seen += len(got)
    finally:
        consumer.close()
    return polls, cpu


def _least(step: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.thread_time()
        step()
        best = min(best, time.thread_time() - start)
    return best


def step_costs(
    settings: Settings,
    store: Store,
    n: int,
    runs: int,
    server_pid: int | None = None,
) -> list[tuple[str, float]]:
    """(step, CPU microseconds per message) for the sink's steps after the fetch; with
    ``server_pid``, also the server's CPU for the same rows in inserts of
    ``settings.sink_batch_rows`` (:func:`server_costs`). With the collector as a sink
    process sets it (``seldom_collected``): at Python's thresholds, the collections
    between steps walk every decoded row kept so far, which the sink never pays."""
    with seldom_collected():
        return _step_costs(settings, store, n, runs, server_pid)


def _step_costs(
    settings: Settings, store: Store, n: int, runs: int, server_pid: int | None
) -> list[tuple[str, float]]:
    polls, fetch_cpu = fetch(settings, n)
    values = [v for _, v, _ in polls]
    decoded = [fast_decode_batch(v, Result) for v in values]
    batch = Batch()

    def add() -> None:
        now = time.time()
        for (partition, _, offsets), events in zip(polls, decoded, strict=True):
            events = refuse_times(events, now, settings.max_future_seconds)
            batch.add_many(partition, offsets, events, Result)

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
    out = [("confluent-kafka consume fetch", fetch_cpu / n * 1e6)]
    out += [(name, _least(fn, runs) / n * 1e6) for name, fn in steps.items()]
    out.append(("the sink's steps, summed", sum(us for _, us in out)))
    out.append(("for comparison: fast_decode_many (models)", _least(
        lambda: [fast_decode_many(v, Result) for v in values], runs) / n * 1e6))  # fmt: skip
    out.append(("for comparison: decode_many (pydantic)", _least(
        lambda: [decode_many(v, Result) for v in values], runs) / n * 1e6))  # fmt: skip
    store.execute(f"DROP DATABASE {database}")
    if server_pid is not None:
        out += server_costs(store, server_pid, columns, runs, settings.sink_batch_rows)
    return out


def view_cases() -> dict[str, list[tuple[rollups.Family, int]]]:
    """The results table's rollup views kept, by case: all, none, one family's (its
    steps), one step's (every family's)."""
    views = [(f, step) for f in rollups.FAMILIES if f.table == ddl.RESULTS.name for step in STEPS]
    cases = {"every rollup view": views, "no view": []}
    for family in dict.fromkeys(f for f, _ in views):
        cases[f"the {family.name} family's views only"] = [v for v in views if v[0] == family]
    for step, (name, _) in STEPS.items():
        cases[f"the {name} views only"] = [v for v in views if v[1] == step]
    return cases


def server_costs(
    store: Store, server_pid: int, columns: dict[str, list], runs: int, size: int
) -> list[tuple[str, float]]:
    """The server's CPU a row (its ``/proc`` counters) for ``columns`` inserted as the sink
    does (``size`` rows an insert, one at a time) into the results table, keeping
    each case's rollup views (:func:`view_cases`); the cases in turn, reversed every other
    round, median of ``runs``."""
    cases = view_cases()
    spent: dict[str, list[float]] = {label: [] for label in cases}
    for turn in range(runs):
        for label in list(cases)[:: 1 if turn % 2 == 0 else -1]:
            spent[label].append(_server_cpu(store, server_pid, columns, size, cases[label]))
    return [(f"server: inserts, {label}", statistics.median(v)) for label, v in spent.items()]


def _server_cpu(
    store: Store, server_pid: int, columns: dict[str, list], size: int, keep: list
) -> float:
    """Server CPU microseconds a row for ``columns``, ``size`` rows an insert, into a fresh
    schema keeping the views ``keep``."""
    n = len(next(iter(columns.values())))
    database = f"v{uuid.uuid4().hex[:8]}"
    migrate(store, database)
    for family in rollups.FAMILIES:
        for step in STEPS:
            if (family, step) not in keep:
                store.execute(f"DROP TABLE {database}.{family.view(step)}")
    start = process_cpu(server_pid)
    for low in range(0, n, size):
        chunk = {k: v[low : low + size] for k, v in columns.items()}
        store.insert(f"{database}.{ddl.RESULTS.name}", chunk)
    spent = process_cpu(server_pid) - start
    store.execute(f"DROP DATABASE {database}")
    return spent / n * 1e6
