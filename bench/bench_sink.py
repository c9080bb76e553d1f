"""The sink and the reports, on a private broker and ClickHouse 18.16 server.

1. Rows/s and CPU per row from the results topic into ClickHouse: ``phasegate``'s Sink
   (confluent-kafka fetch, decode, ledger, columnar insert, commit; into the 18.16 server
   and into chdb; also without two of its choices: into 18.16 with librdkafka's own
   fetch backoff, into chdb one insert at a time with chdb's own insert settings) beside
   the bare client loops over the same pre-produced topic in the
   same run (``bench/client_loops.py``: kafka-python poll, aiokafka getmany,
   confluent-kafka consume), each in its own consumer group, medians of ``--runs`` runs; each
   timed from its first fetched batch to its last record, the first batch not counted (it
   waits for the group's join); the sink from its first commit to its last, the first
   batch not counted (the steady state: not the pipeline filling up), with how busy
   the machine's cores were meanwhile (every process: the broker's, the server's); for
   the sink also the time from its last fetch to its last commit (the batches in flight
   landing: a latency) and the growth of the process's peak memory (the most of the
   runs). Then the CPU per message of each of the sink's steps (``bench/sink_steps.py``)
   and of the ClickHouse server.
2. Report time over ``--rows`` result rows (and a tenth as many feedback rows) generated
   server-side (``INSERT ... SELECT ... FROM numbers(N)``, through the rollup views): the
   report query and the whole phase report (every query of ``phasegate report --phase``;
   phases start and end mid-minute, at odd milliseconds) as they run, from the rollups,
   against the same with ``--final`` (every row read ``FINAL``, how reports ran before
   the rollups), the baseline, and against the report query over the whole range (whole
   hours: rollups only).

    python bench/bench_sink.py [--events 500000] [--runs 3] [--rows 10000000]
        [--skip-sink] [--skip-reports]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import client_loops
from bench.common import PeakMemory, create_topics, median, print_table, process_cpu, tansu
from bench.sink_steps import step_costs
from phasegate.stack import free_ports
from phasegate.stack.clickhouse import clickhouse_process, server_url
from producers.simulator import generate, virtual_clock
from schemas import RolloutEvent, encode
from schemas.events import Result
from schemas.plan import load_plan
from schemas.settings import Settings
from sinks import rows
from sinks.batch import seldom_collected
from sinks.consumer import Sink
from sinks.migrations import migrate
from sinks.phase_report import phase_report
from sinks.report import system_report
from sinks.store import Store
from sinks.store.local import LocalStore
from sinks.store.server import ServerStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def produce(settings: Settings, n: int) -> None:
    clock = virtual_clock(datetime.now(UTC) - timedelta(seconds=n / 1000), rate=1000)
    events = generate("healthy", n * 2, seed=3, clock=clock)
    results = itertools.islice((e for e in events if isinstance(e, Result)), n)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, batch_size=256 * 1024
    )
    for r in results:
        producer.send(settings.topics.results, key=r.unit_id.encode(), value=encode(r))
    producer.flush()
    producer.close()


def sink(settings: Settings, store: Store, n: int, **options: Any) -> tuple[float, ...]:
    """The Sink storing and committing ``n`` results: (rows/s, CPU us a row of this
    process: the loop's thread and the insert threads, the share of the machine's cores
    busy) from its first commit to its last, the rows of the first not counted (the
    steady state: not the pipeline filling up at the start); the seconds from its last
    fetch to its last commit (the batches then in flight landing: a latency); and the
    growth of this process's peak memory over the run, MB (the batches held, the
    driver's buffers; chdb: its engine's too). ``options`` go to the Sink."""
    database = f"b{uuid.uuid4().hex[:8]}"
    migrate(store, database)
    mine = settings.model_copy(update={"database": database})
    runner = Sink(mine, store, group_id=f"sink-{database}", batch_seconds=0.5, **options)
    memory = PeakMemory()
    runner.start()
    landed, first, fetched, batches = client_loops.Span(), 0, 0.0, 0
    try:
        with seldom_collected():  # as `phasegate sink` runs it
            while runner.counters.messages < n or runner.pending:
                if runner.poll_once(timeout_ms=200):
                    fetched = time.perf_counter()
                if runner.counters.batches > batches:  # one or more committed
                    batches = runner.counters.batches
                    landed.add(sum(runner.counters.rows.values()) - landed.seen)
                    first = first or landed.seen
        grown = memory.growth()
    finally:
        runner.close()
    assert batches > 1, f"{n:,} events are one insert: no steady state (raise --events)"
    assert store.query(f"SELECT count() FROM {database}.results").scalar() == n
    store.execute(f"DROP DATABASE {database}")
    return (*landed.rate(first), landed.last[0] - fetched, grown)


def _sink_child(settings: Settings, url: str, n: int, total, times) -> None:
    """One sink process of a group: run until the group has stored ``n`` rows (a message
    read again after a rebalance is read twice and stored once: count the stored)."""
    store = ServerStore(url)
    runner = Sink(settings, store, group_id=f"sink-{settings.database}", batch_seconds=0.5)
    runner.start()
    start, seen = None, 0
    try:
        with seldom_collected():  # as `phasegate sink` runs it
            while total.value < n or runner.pending:
                if runner.poll_once(timeout_ms=200) and start is None:
                    start = time.perf_counter()
                stored = sum(runner.counters.rows.values())
                with total.get_lock():
                    total.value += stored - seen
                seen = stored
    finally:
        runner.close()
        store.close()
    times.put((start, time.perf_counter()))


def sink_processes(settings: Settings, url: str, n: int, count: int) -> float:
    """Seconds for ``count`` sink processes in one consumer group to store ``n`` results
    (the first fetch of any to the last commit of all)."""
    store = ServerStore(url)
    database = f"b{uuid.uuid4().hex[:8]}"
    migrate(store, database)
    mine = settings.model_copy(update={"database": database})
    ctx = multiprocessing.get_context("spawn")
    total, times = ctx.Value("q", 0), ctx.Queue()
    children = [
        ctx.Process(target=_sink_child, args=(mine, url, n, total, times)) for _ in range(count)
    ]
    for child in children:
        child.start()
    spans = [times.get(timeout=600) for _ in children]
    for child in children:
        child.join()
    stored = store.query(f"SELECT count() FROM {database}.results FINAL").scalar()
    assert stored == n, f"{stored} rows stored of {n}"
    store.execute(f"DROP DATABASE {database}")
    store.close()
    return max(end for _, end in spans) - min(start for start, _ in spans if start)


GENERATE = """
INSERT INTO {db}.results (event_id, ts, rollout, system, query_id, unit_id, success,
    confidence, latency_ms, error_type, error_message, error_critical, rules, fallback, weight)
SELECT generateUUIDv4(), toDateTime('2024-05-01 00:00:00', 'UTC') + intDiv(number, 100),
    'kai', if(number % 2 = 0, 'production', 'pipeline'), toString(number),
    toString(number % 1000), number % 50 != 0, (number % 100) / 100, 50 + number % 300,
    if(number % 50 = 0, 'timeout', NULL), if(number % 50 = 0, 'slow', NULL),
    if(number % 50 = 0, 0, NULL), [concat('r', toString(number % 7))], 0, 50
FROM numbers({n})
"""

GENERATE_FEEDBACK = """
INSERT INTO {db}.feedback (event_id, ts, rollout, query_id, system, verdict)
SELECT generateUUIDv4(), toDateTime('2024-05-01 00:00:00', 'UTC') + intDiv(number, 10),
    'kai', toString(number * 10), if(number % 2 = 0, 'production', 'pipeline'),
    ['correct', 'incorrect', 'unsure'][1 + number % 3]
FROM numbers({n})
"""


def timed(fn, runs: int) -> float:
    fn()  # warm
    return median([_clock(fn) for _ in range(runs)])


def _clock(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report_times(store: Store, n: int, runs: int) -> list[list[str]]:
    db = "bench_report"
    store.execute(f"DROP DATABASE IF EXISTS {db}")
    migrate(store, db)
    start = time.perf_counter()
    store.execute(GENERATE.format(db=db, n=n))
    first, half = T0 + timedelta(seconds=0.625), T0 + timedelta(seconds=n // 200 + 0.375)
    log = [  # phases starting and ending mid-minute, at odd milliseconds
        RolloutEvent(rollout="kai", type="phase_started", phase=1, weight=50, ts=first),
        RolloutEvent(rollout="kai", type="phase_started", phase=2, weight=75, ts=half),
    ]
    store.insert(f"{db}.rollout_events", rows.rollout_columns(log))
    store.execute(GENERATE_FEEDBACK.format(db=db, n=n // 10))
    load = time.perf_counter() - start
    plan = load_plan()
    generated = f"generate {n:,} results, {n // 10:,} feedback (+ rollup views)"
    out = [[generated, f"{load:.2f} s", "", ""]]
    edges = T0 + timedelta(seconds=n / 1000 + 0.5), T0 + timedelta(seconds=n / 120)
    cases = {
        "report query, --final (baseline)": lambda: system_report(store, db, "kai", final=True),
        "report query (rollups)": lambda: system_report(store, db, "kai"),
        "report query, a range not on minutes": lambda: system_report(store, db, "kai", *edges),
        "phase report --final, every query (phase 2)": lambda: phase_report(
            store, db, "kai", 2, plan.phase(2), final=True
        ),
        "phase report, every query (phase 2)": lambda: phase_report(
            store, db, "kai", 2, plan.phase(2)
        ),
        "phase report, every query (phase 1, both ends mid-minute)": lambda: phase_report(
            store, db, "kai", 1, plan.phase(1)
        ),
    }
    times = {name: timed(fn, runs) for name, fn in cases.items()}
    final, rollups = times["report query, --final (baseline)"], times["report query (rollups)"]
    out += [[k, f"{s:.3f} s", f"{s / final:.3f}x", f"{s / rollups:.1f}x"] for k, s in times.items()]
    store.execute(f"DROP DATABASE {db}")
    return out


@contextmanager
def chdb_plain(store: LocalStore) -> Iterator[None]:
    """``store`` inserting one batch at a time with chdb's own insert settings (the
    partition cap lifted, which a batch of recent rows never reaches): what the local
    store's two sessions and its insert settings are measured against."""
    store.inserts_at_once = 1
    store.insert_settings = "SETTINGS max_partitions_per_insert_block = 0"
    try:
        yield
    finally:
        del store.inserts_at_once, store.insert_settings  # the class's again


def sink_tables(
    args, settings: Settings, server: ServerStore, local: LocalStore, server_pid: int
) -> None:
    """Print the sink's rows/s and CPU per row beside the bare loops', and its CPU per
    message by step."""
    create_topics(settings)
    produce(settings, args.events)
    n, topic, runs = args.events, settings.topics.results, range(args.runs)
    cases = {
        f"bare {name} loop": [loop(settings.bootstrap_servers, topic, n) for _ in runs]
        for name, loop in client_loops.loops().items()
    }
    server_cpu = process_cpu(server_pid)
    cases["Sink -> ClickHouse 18.16 server"] = [sink(settings, server, n) for _ in runs]
    server_cpu = process_cpu(server_pid) - server_cpu
    cases["Sink -> ClickHouse 18.16 server, librdkafka's fetch backoff (1 s)"] = [
        sink(settings, server, n, fetch_backoff_ms=1000) for _ in runs
    ]
    cases["Sink -> chdb 4.4 (CPU: chdb's engine too)"] = [sink(settings, local, n) for _ in runs]
    with chdb_plain(local):
        cases["Sink -> chdb 4.4, one insert at a time, chdb's insert settings"] = [
            sink(settings, local, n) for _ in runs
        ]
    two = median([sink_processes(settings, server.url, n, 2) for _ in runs])
    rates = {k: median([run[0] for run in v]) for k, v in cases.items()}
    kp, aio = rates["bare kafka-python poll loop"], rates["bare aiokafka getmany loop"]
    table = [
        [k, f"{rates[k]:,.0f}", f"{median([run[1] for run in v]):.1f}",
         f"{rates[k] / kp:.2f}", f"{rates[k] / aio:.2f}",
         f"{median([run[2] for run in v]):.0%}",
         *([f"{median([run[3] for run in v]) * 1000:.0f}",
            f"{max(run[4] for run in v):.0f}"] if len(v[0]) > 3 else ["", ""])]
        for k, v in cases.items()
    ]  # fmt: skip
    table.append(["2 Sink processes, one group -> ClickHouse 18.16 (first fetch to last commit)",
                  f"{n / two:,.0f}", "",
                  f"{n / two / kp:.2f}", f"{n / two / aio:.2f}", "", "", ""])  # fmt: skip
    size = settings.sink_batch_rows
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    title = f"results topic -> ClickHouse, {n:,} events, batches of {size:,}, load {load}"
    print_table(f"{title}, median of {args.runs}",
                ["consumer", "rows/s", "CPU us/row", "of kafka-python", "of aiokafka",
                 f"machine busy ({os.cpu_count()} cores)", "last fetch to last commit, ms",
                 "peak memory, +MB (most)"],
                table)  # fmt: skip
    costs = step_costs(settings, server, n, args.runs, server_pid)
    costs.append(("ClickHouse 18.16 server (insert, rollup views, merges)",
                  server_cpu / (n * args.runs) * 1e6))  # fmt: skip
    print_table(
        f"CPU per message, {n:,} events, least of {args.runs}",
        ["step", "us/msg"],
        [[name, f"{us:.2f}"] for name, us in costs],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="the sink's batch_rows (default: the setting sink_batch_rows)",
    )
    parser.add_argument("--skip-sink", action="store_true")
    parser.add_argument("--skip-reports", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tansu() as bootstrap:
        tcp, http = free_ports(2)
        proc = clickhouse_process(Path(tmp) / "ch", "127.0.0.1", tcp, http)
        (Path(tmp) / "ch").mkdir()
        proc.start(timeout=30)
        try:
            sized = {"sink_batch_rows": args.batch} if args.batch else {}
            settings = Settings(
                bootstrap_servers=bootstrap, topic_prefix="bench.", clickhouse_url=None, **sized
            )
            server = ServerStore(server_url("127.0.0.1", tcp))
            local = LocalStore(Path(tmp) / "chdb")
            if not args.skip_sink:
                sink_tables(args, settings, server, local, proc.pid())
            if not args.skip_reports:
                for name, store in (("ClickHouse 18.16 server", server), ("chdb 4.4", local)):
                    print_table(
                        f"reports over {args.rows:,} result rows, {name}, median of {args.runs}",
                        ["what", "time", "vs --final", "vs rollups only"],
                        report_times(store, args.rows, args.runs),
                    )
            local.close()
            server.close()
        finally:
            proc.stop(timeout=10)


if __name__ == "__main__":
    main()
