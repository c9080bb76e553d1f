"""What the Emitter costs the application, per compression, against a bare producer loop.

On a private Tansu broker, per ``emit_compression``, in ``--runs`` rounds (medians):

1. Delivered (acknowledged) events/s, CPU per event of the threads that send, and TCP
   bytes sent to the broker per event (``ss``), for the Emitter (``emit()`` a burst,
   then ``flush()``) and for a bare ``KafkaProducer`` loop in the same round: the
   Emitter's exact producer config, the same events pre-encoded, sent from the main
   thread. The Emitter's CPU is its sender thread (encodes, hands records to the
   producer) plus kafka-python's network thread (closes, compresses and sends batches):
   what the application pays in the background. The bare loop's is its own thread plus
   the network thread. The caller's CPU per ``emit()`` is reported beside them.
   A reference row, no baseline: aiokafka's batch API (records appended to per-partition
   batches by its Cython builder, each batch sent whole), what a batch transport costs.
2. At ``--compression`` (default: the setting's default): ``emit()`` on the caller's
   thread, every call timed (p50, p99, microseconds) vs an empty function timed the
   same way, in a burst and paced at ``--rate``; and the same while the broker is down.

    python bench/bench_emit.py [--events 50000] [--runs 3] [--rate 10000]

Goals: sender CPU <= 15 us an event at the default compression; delivered >= 90% of the
bare loop; p99 emit() <= 50 us; p99 while the broker is down <= 2x up.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
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
from typing import Any, get_args

from aiokafka import AIOKafkaProducer
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import create_topics, median, print_table, tansu
from producers.emitter import Emitter
from producers.simulator import generate
from schemas.codec import encode
from schemas.events import Result
from schemas.settings import Settings

COMPRESSIONS: tuple[str, ...] = get_args(Settings.model_fields["emit_compression"].annotation)
DEFAULT_COMPRESSION: str = Settings.model_fields["emit_compression"].default
Sample = dict[str, float]  # one run's measures


def results(n: int) -> list[Result]:
    return [e for e in generate("healthy", n * 2, seed=11) if isinstance(e, Result)][:n]


def settings_for(bootstrap: str, compression: str = DEFAULT_COMPRESSION) -> Settings:
    settings = Settings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"b{uuid.uuid4().hex[:6]}.",
        emit_compression=compression,
    )
    create_topics(settings)
    return settings


# ---------------------------------------------------------------- what a run costs
def thread_cpu_s(native_id: int) -> float:
    """CPU seconds one thread of this process has used (``schedstat``, ns)."""
    with open(f"/proc/self/task/{native_id}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def thread_named(name: str) -> int:
    (native_id,) = [t.native_id for t in threading.enumerate() if t.name == name]
    return native_id


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


def kafka_python_threads(sender: int, client_id: str) -> dict[str, int]:
    """The thread that calls ``KafkaProducer.send`` and the producer's network thread."""
    return {"sender": sender, "network": thread_named(f"{client_id}-network-thread")}


@contextmanager
def measured(bootstrap: str, threads: dict[str, int], n: int) -> Iterator[Sample]:
    """Events/s, CPU us per event of each of ``threads`` and in all, wire bytes per event.

    ``caller us``: the CPU per event of the thread running this block.
    """
    sample: Sample = {}
    cpu0 = {name: thread_cpu_s(tid) for name, tid in threads.items()}
    wire0, caller0 = wire_bytes(bootstrap), time.thread_time()
    t0 = time.perf_counter()
    yield sample
    elapsed = time.perf_counter() - t0
    sample["events/s"] = n / elapsed
    for name, tid in threads.items():
        sample[f"{name} us"] = (thread_cpu_s(tid) - cpu0[name]) / n * 1e6
    sample["cpu us"] = sum(sample[f"{name} us"] for name in threads)
    sample["caller us"] = (time.thread_time() - caller0) / n * 1e6
    sample["wire B"] = (wire_bytes(bootstrap) - wire0) / n


def bare_loop(bootstrap: str, compression: str, events: list[Result]) -> Sample:
    """A bare KafkaProducer loop with the Emitter's producer config, pre-encoded bytes."""
    settings = settings_for(bootstrap, compression)
    emitter = Emitter(settings)  # only to reuse its exact producer config
    config = {**emitter._producer_config, "client_id": "bench-bare"}
    emitter.close(0)
    records = [(e.unit_id.encode(), encode(e)) for e in events]
    producer = KafkaProducer(**config)
    producer.send(settings.topics.results, b"warm-up", key=b"w").get(10)
    threads = kafka_python_threads(threading.get_native_id(), "bench-bare")
    with measured(bootstrap, threads, len(records)) as sample:
        for key, value in records:
            producer.send(settings.topics.results, value, key=key)
        producer.flush()
    producer.close()
    return sample


def emitter_burst(bootstrap: str, compression: str, events: list[Result]) -> Sample:
    """The Emitter: emit() every event at once, then flush()."""
    with Emitter(settings_for(bootstrap, compression)) as emitter:
        emitter.emit(events[0])
        assert emitter.flush(10)
        threads = kafka_python_threads(emitter._thread.native_id, "phasegate-emitter")
        with measured(bootstrap, threads, len(events)) as sample:
            for event in events:
                emitter.emit(event)
            assert emitter.flush(60)
        assert emitter.stats().dropped == 0
    return sample


def batch_api_loop(bootstrap: str, compression: str, events: list[Result]) -> Sample:
    """Reference, not a baseline: aiokafka's batch API (Cython record builder) in one loop.

    The same events pre-encoded, acks=all, 256 KiB batches built per partition (the
    Emitter's key hash) and handed over whole; all its work is on this one thread.
    """
    settings = settings_for(bootstrap, compression)
    topic = settings.topics.results
    records = [(e.unit_id.encode(), encode(e)) for e in events]
    key_hash = functools.cache(lambda key: murmur2(key) & 0x7FFFFFFF)  # the Emitter's

    async def run() -> Sample:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=False,
            compression_type=None if compression == "none" else compression,
            max_batch_size=256 * 1024,
        )
        await producer.start()
        await producer.send_and_wait(topic, b"warm-up", key=b"w")
        partitions = sorted(await producer.partitions_for(topic))
        with measured(bootstrap, {"loop": threading.get_native_id()}, len(records)) as sample:
            batches: dict[int, Any] = {}
            sent = []
            for key, value in records:
                p = partitions[key_hash(key) % len(partitions)]
                batch = batches.get(p) or batches.setdefault(p, producer.create_batch())
                if batch.append(key=key, value=value, timestamp=None) is None:
                    sent.append(await producer.send_batch(batch, topic, partition=p))
                    batches[p] = producer.create_batch()
                    batches[p].append(key=key, value=value, timestamp=None)
            for p, batch in batches.items():
                sent.append(await producer.send_batch(batch, topic, partition=p))
            await asyncio.gather(*sent)
        await producer.stop()
        return sample

    return asyncio.run(run())


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
    args = parser.parse_args()
    events = results(args.events)
    gc.collect()

    runs: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    with tansu() as bootstrap:
        for i in range(args.runs):
            for c in COMPRESSIONS if i % 2 == 0 else COMPRESSIONS[::-1]:
                loops = (bare_loop, emitter_burst, batch_api_loop)
                for fn in loops if i % 2 == 0 else loops[::-1]:
                    for measure, value in fn(bootstrap, c, events).items():
                        add(f"{fn.__name__} {c} {measure}", value)
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
    print_compressions(m, args)
    print_caller(m, args)
    print("runs:", {k: [round(x, 2) for x in v] for k, v in runs.items()})


def print_compressions(m: dict[str, float], args: argparse.Namespace) -> None:
    rows = []
    for c in COMPRESSIONS:
        em = {k.split(" ", 2)[2]: v for k, v in m.items() if k.startswith(f"emitter_burst {c} ")}
        bare = {k.split(" ", 2)[2]: v for k, v in m.items() if k.startswith(f"bare_loop {c} ")}
        ref = {k.split(" ", 2)[2]: v for k, v in m.items() if k.startswith(f"batch_api_loop {c} ")}
        rows.append(
            [
                c + (" (default)" if c == DEFAULT_COMPRESSION else ""),
                f"{em['events/s']:,.0f}",
                f"{bare['events/s']:,.0f}",
                f"{em['events/s'] / bare['events/s']:.0%}",
                f"{em['cpu us']:.1f} ({em['sender us']:.1f}, {em['network us']:.1f})",
                f"{bare['cpu us']:.1f} ({bare['sender us']:.1f}, {bare['network us']:.1f})",
                f"{em['caller us']:.2f}",
                f"{em['wire B']:.0f}",
                f"{ref['events/s']:,.0f}",
                f"{ref['cpu us']:.1f}",
            ]
        )
    print_table(
        f"Emitter vs a bare KafkaProducer loop: {args.events:,} results, medians of {args.runs}",
        [
            "compression",
            "Emitter events/s",
            "bare events/s",
            "ratio",
            "Emitter CPU us/event (sender, network thread)",
            "bare CPU us/event (loop, network thread)",
            "emit() caller CPU us",
            "wire bytes/event",
            "ref: aiokafka batch API events/s",
            "ref CPU us/event",
        ],
        rows,
        width=200,
    )


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
        f"emit() on the caller's thread, {args.compression}; paced: {args.rate:,.0f}/s",
        ["measure", "phasegate", "baseline", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
