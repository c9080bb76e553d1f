"""What the Emitter costs the application, per client and compression, against a bare loop.

On a private Tansu broker, per Kafka client (kafka-python; confluent-kafka when installed)
and ``emit_compression``, in ``--runs`` rounds (medians):

1. Delivered (acknowledged) events/s, CPU per event of the threads that send, and TCP
   bytes sent to the broker per event (``ss``), for the Emitter (``emit()`` a burst,
   then ``flush()``) and for two bare producer loops of the same client in the same
   round, with the Emitter's exact producer config, sending from the main thread with no
   delivery callback: one with the events pre-encoded (the client's limit), one encoding
   each event with the Emitter's encoder and passing the key as the Emitter does (what an
   application producing directly would write: the Emitter's baseline). The Emitter's
   CPU is its sender thread (encodes, hands records to the client, counts deliveries),
   the caller's ``emit()`` and the client's own threads (kafka-python's network thread;
   librdkafka's ``rdk:`` threads: batches, compresses, sends); a loop's is its own thread
   plus the client's. Ratios are medians of each round's (the loops of a round ran side
   by side): on a saturated machine the CPU ratio is the steadier one.
2. With the default client at ``--compression`` (default: the setting's default):
   ``emit()`` on the caller's thread, every call timed (p50, p99, microseconds) vs an
   empty function timed the same way, in a burst and paced at ``--rate``; and the same
   while the broker is down.

    python bench/bench_emit.py [--events 50000] [--runs 3] [--rate 10000]
        [--compression lz4] [--compressions none lz4 ...] [--clients confluent-kafka ...]

Goals: sender CPU <= 15 us an event at the default compression; delivered >= 90% of the
bare encoding loop; p99 emit() <= 50 us; p99 while the broker is down <= 2x up.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import create_topics, median, print_table, tansu
from producers.emitter import Emitter
from producers.simulator import generate
from schemas.events import Result
from schemas.fastcodec import fast_encode
from schemas.settings import Settings

COMPRESSIONS: tuple[str, ...] = get_args(Settings.model_fields["emit_compression"].annotation)
DEFAULT_COMPRESSION: str = Settings.model_fields["emit_compression"].default
CLIENTS: tuple[str, ...] = ("kafka-python",) + (
    ("confluent-kafka",) if importlib.util.find_spec("confluent_kafka") else ()
)
Sample = dict[str, float]  # one run's measures


def results(n: int) -> list[Result]:
    return [e for e in generate("healthy", n * 2, seed=11) if isinstance(e, Result)][:n]


def settings_for(
    bootstrap: str, compression: str = DEFAULT_COMPRESSION, client: str = "auto"
) -> Settings:
    settings = Settings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"b{uuid.uuid4().hex[:6]}.",
        emit_compression=compression,
        emit_client=client,
    )
    create_topics(settings)
    return settings


# ---------------------------------------------------------------- what a run costs
def thread_cpu_s(native_id: int) -> float:
    """CPU seconds one thread of this process has used (``schedstat``, ns)."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (FileNotFoundError, ProcessLookupError):  # ended meanwhile (figures lost)
        return 0.0


def client_threads(client: str) -> list[int]:
    """The client's own threads: kafka-python's network thread(s), librdkafka's ``rdk:``."""
    if client == "kafka-python":
        return [t.native_id for t in threading.enumerate() if t.name.endswith("-network-thread")]
    tasks = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                if f.read().startswith("rdk:"):
                    tasks.append(int(task))
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return tasks


def wire_bytes(bootstrap: str) -> int:
    """TCP bytes this process sent to the broker on its open connections (``ss``)."""
    port = bootstrap.rsplit(":", 1)[1]
    out = subprocess.run(
        ["ss", "-tinpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sockets = re.findall(r"pid=(\d+),.*?bytes_sent:(\d+)", out, re.S)
    return sum(int(sent) for pid, sent in sockets if int(pid) == os.getpid())


@contextmanager
def measured(bootstrap: str, threads: dict[str, list[int]], n: int) -> Iterator[Sample]:
    """Events/s, CPU us per event of each group of ``threads`` and in all, wire bytes per
    event. ``caller us``: the CPU per event of the thread running this block."""
    sample: Sample = {}
    cpu0 = {name: sum(map(thread_cpu_s, tids)) for name, tids in threads.items()}
    wire0, caller0 = wire_bytes(bootstrap), time.thread_time()
    t0 = time.perf_counter()
    yield sample
    elapsed = time.perf_counter() - t0
    sample["events/s"] = n / elapsed
    for name, tids in threads.items():
        sample[f"{name} us"] = (sum(map(thread_cpu_s, tids)) - cpu0[name]) / n * 1e6
    sample["cpu us"] = sum(sample[f"{name} us"] for name in threads)
    sample["caller us"] = (time.thread_time() - caller0) / n * 1e6
    sample["wire B"] = (wire_bytes(bootstrap) - wire0) / n


def bare_loop(
    bootstrap: str, compression: str, client: str, events: list[Result], encoding: bool = False
) -> Sample:
    """The client's producer alone, with the Emitter's config, sending pre-encoded bytes
    (``encoding``: encoding each event in the loop, as an application sending directly
    would, with the Emitter's encoder)."""
    settings = settings_for(bootstrap, compression, client)
    emitter = Emitter(settings, client_id="bench-bare")  # only for its exact producer config
    config = emitter._client_config
    emitter.close(0)
    topic = settings.topics.results
    records = [(e.unit_id.encode(), fast_encode(e)) for e in events]
    if client == "kafka-python":
        from kafka import KafkaProducer

        producer = KafkaProducer(**config)
        producer.send(topic, b"warm-up", key=b"w").get(10)
        send, done = producer.send, producer.flush
    else:
        from confluent_kafka import Producer

        producer = Producer(config)
        producer.produce(topic, b"warm-up", b"w")
        producer.flush(10)
        send, done = producer.produce, producer.flush
    threads = {"sender": [threading.get_native_id()], "client": client_threads(client)}
    with measured(bootstrap, threads, len(records)) as sample:
        if encoding and client == "kafka-python":  # arguments by position, as the Emitter's
            for e in events:
                send(topic, fast_encode(e), e.unit_id.encode())
        elif encoding:  # librdkafka takes a str key as its UTF-8 bytes
            for e in events:
                send(topic, fast_encode(e), e.unit_id)
        else:
            for key, value in records:
                send(topic, value, key)
        done()
    producer.close()
    return sample


def bare_encoding_loop(
    bootstrap: str, compression: str, client: str, events: list[Result]
) -> Sample:
    return bare_loop(bootstrap, compression, client, events, encoding=True)


def emitter_burst(bootstrap: str, compression: str, client: str, events: list[Result]) -> Sample:
    """The Emitter: emit() every event at once, then flush()."""
    with Emitter(settings_for(bootstrap, compression, client)) as emitter:
        emitter.emit(events[0])
        assert emitter.flush(10)
        assert emitter._client is not None and emitter._client.name == client
        threads = {"sender": [emitter._thread.native_id], "client": client_threads(client)}
        with measured(bootstrap, threads, len(events)) as sample:
            for event in events:
                emitter.emit(event)
            assert emitter.flush(60)
        assert emitter.stats().dropped == 0
    sample["cpu us"] += sample["caller us"]  # the caller's emit() is the Emitter's cost too
    return sample


# ---------------------------------------------------------------- emit() on the caller
def noop(event: object) -> bool:
    return True


def timed_calls(
    fn: Callable[[Result], object], events: list[Result], rate: float | None
) -> list[float]:
    """Microseconds of each ``fn(event)``; paced at ``rate`` calls/s by busy waiting."""
    clock = time.perf_counter_ns
    costs = []
    gap = 0 if rate is None else int(1e9 / rate)
    next_at = clock()
    for event in events:
        if gap:
            next_at += gap
            while clock() < next_at:
                pass
        t0 = clock()
        fn(event)
        costs.append((clock() - t0) / 1000)
    return costs


def p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


def caller_costs(settings: Settings, events: list[Result], rate: float | None) -> list[float]:
    with Emitter(settings, max_events=len(events) + 10) as emitter:
        emitter.emit(events[0])
        emitter.flush(10)
        costs = timed_calls(emitter.emit, events, rate)
        emitter.flush(60)
    return costs


def costs_broker_down(compression: str, events: list[Result], rate: float | None) -> list[float]:
    """emit() costs with the broker stopped after the Emitter had connected."""
    with tansu() as bootstrap:
        emitter = Emitter(settings_for(bootstrap, compression), max_events=len(events) + 10)
        emitter.emit(events[0])
        emitter.flush(10)
    time.sleep(1.0)  # broker gone; let the producer notice
    costs = timed_calls(emitter.emit, events, rate)
    stats = emitter.stats()
    assert stats.buffered >= len(events) and stats.consistent
    emitter.close(0)
    return costs


# ---------------------------------------------------------------- the run
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10_000, help="paced emit rate, calls/s")
    parser.add_argument("--compression", choices=COMPRESSIONS, default=DEFAULT_COMPRESSION)
    parser.add_argument("--compressions", nargs="+", choices=COMPRESSIONS, default=COMPRESSIONS)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=CLIENTS)
    args = parser.parse_args()
    events = results(args.events)
    gc.collect()

    runs: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    with tansu() as bootstrap:
        for i in range(args.runs):
            order = 1 if i % 2 == 0 else -1  # alternate the order of everything per round
            for client in args.clients[::order]:
                for c in args.compressions[::order]:
                    for fn in (bare_loop, bare_encoding_loop, emitter_burst)[::order]:
                        for measure, value in fn(bootstrap, c, client, events).items():
                            add(f"{fn.__name__}|{client}|{c}|{measure}", value)
            for label, rate in (("burst", None), ("paced", args.rate)):
                noop_costs = timed_calls(noop, events, rate)
                add(f"noop {label} p50", median(noop_costs))
                add(f"noop {label} p99", p99(noop_costs))
                costs = caller_costs(settings_for(bootstrap, args.compression), events, rate)
                add(f"emit {label} p50", median(costs))
                add(f"emit {label} p99", p99(costs))
    for _ in range(args.runs):
        for label, rate in (("burst", None), ("paced", args.rate)):
            costs = costs_broker_down(args.compression, events, rate)
            add(f"down {label} p50", median(costs))
            add(f"down {label} p99", p99(costs))

    m = {k: median(v) for k, v in runs.items()}
    print_compressions(runs, args)
    print_caller(m, args)
    print("runs:", {k: [round(x, 2) for x in v] for k, v in runs.items()})


def print_compressions(runs: dict[str, list[float]], args: argparse.Namespace) -> None:
    """Medians; the Emitter's ratios are medians of each round's (the loops of a round ran
    side by side, under the same load)."""
    rows = []
    for client in args.clients:
        for c in args.compressions:
            em, bare, encoding = (
                {k.split("|")[3]: v for k, v in runs.items() if k.startswith(f"{fn}|{client}|{c}|")}
                for fn in ("emitter_burst", "bare_loop", "bare_encoding_loop")
            )
            m_em, m_bare, m_enc = (
                {k: median(v) for k, v in d.items()} for d in (em, bare, encoding)
            )
            default = client == CLIENTS[-1] and c == DEFAULT_COMPRESSION
            rows.append(
                [
                    f"{client} {c}" + (" (default)" if default else ""),
                    f"{m_em['events/s']:,.0f}",
                    f"{m_bare['events/s']:,.0f} ({paired(em, bare, 'events/s'):.0%})",
                    f"{m_enc['events/s']:,.0f} ({paired(em, encoding, 'events/s'):.0%})",
                    f"{m_em['sender us']:.1f} + {m_em['caller us']:.2f} + {m_em['client us']:.1f}",
                    f"{m_enc['sender us']:.1f} + {m_enc['client us']:.1f}",
                    f"{paired(encoding, em, 'cpu us'):.0%}",
                    f"{m_bare['sender us']:.1f} + {m_bare['client us']:.1f}",
                    f"{m_em['wire B']:.0f}",
                ]
            )
    print_table(
        f"Emitter vs a bare producer loop: {args.events:,} results, medians of {args.runs}",
        [
            "client, compression",
            "Emitter events/s",
            "bare loop, pre-encoded: events/s (Emitter's ratio)",
            "bare loop, encoding: events/s (Emitter's ratio)",
            "Emitter CPU us/event: sender + emit() + client",
            "bare encoding CPU us/event: loop + client",
            "CPU ratio: bare encoding / Emitter",
            "bare pre-encoded CPU us/event: loop + client",
            "wire bytes/event",
        ],
        rows,
        width=220,
    )


def paired(of: dict[str, list[float]], to: dict[str, list[float]], measure: str) -> float:
    """The median of each round's ratio ``of / to``."""
    return median([a / b for a, b in zip(of[measure], to[measure], strict=True)])


def print_caller(m: dict[str, float], args: argparse.Namespace) -> None:
    rows = []
    for label in ("burst", "paced"):
        for q in ("p50", "p99"):
            base = m[f"noop {label} {q}"]
            up, down = m[f"emit {label} {q}"], m[f"down {label} {q}"]
            rows.append(
                [f"emit() {label} {q} (us)", f"{up:.2f}", f"noop {base:.2f}", f"{up / base:.1f}x"]
            )
            rows.append(
                [
                    f"emit() {label} {q}, broker down (us)",
                    f"{down:.2f}",
                    f"up {up:.2f}",
                    f"{down / up:.2f}x",
                ]
            )
    print_table(
        f"emit() on the caller's thread, {CLIENTS[-1]} {args.compression}; "
        f"paced: {args.rate:,.0f}/s",
        ["measure", "phasegate", "baseline", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
