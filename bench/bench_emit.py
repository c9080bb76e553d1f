"""What the Emitter costs the application, and how much of the broker's rate it delivers.

Three measurements on a private Tansu broker, each against a baseline from the same run:

1. ``emit()`` on the caller's thread (median and p99, microseconds, every call timed)
   vs an empty function call timed the same way; in a burst and paced at ``--rate``.
2. Events/s delivered (acknowledged) to the broker: ``Emitter`` (encodes the models) vs
   a bare ``KafkaProducer`` loop sending the same pre-encoded bytes with the same
   settings, with kafka-python's default partitioner ("bare") and with the Emitter's
   hash-cached one ("bare+hash cache", the transport's own ceiling).
3. ``emit()`` p99 while the broker is stopped vs while it is up.

    python bench/bench_emit.py [--events 50000] [--runs 3] [--rate 10000]

Goals: p99 emit <= 50 us; delivered >= 90% of the bare loop; p99 while down <= 2x up.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import create_topics, median, print_table, tansu
from producers.emitter import Emitter
from producers.simulator import generate
from schemas.codec import encode
from schemas.events import Result
from schemas.settings import Settings


def results(n: int) -> list[Result]:
    return [e for e in generate("healthy", n * 2, seed=11) if isinstance(e, Result)][:n]


def noop(event: object) -> bool:
    return True


def timed_calls(fn, events: list[Result], rate: float | None) -> list[float]:
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


def settings_for(bootstrap: str) -> Settings:
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:6]}.")
    create_topics(settings)
    return settings


def bare_rate(bootstrap: str, events: list[Result], same_partitioner: bool = False) -> float:
    """Events/s of a bare KafkaProducer loop sending the same bytes, pre-encoded.

    Same settings as the Emitter's producer (acks, gzip, linger, batch size), with
    kafka-python's default partitioner unless ``same_partitioner``.
    """
    settings = settings_for(bootstrap)
    emitter = Emitter(settings)  # only to reuse its exact producer config
    config = dict(emitter._producer_config)
    emitter.close(0)
    if not same_partitioner:
        del config["partitioner"]
    records = [(e.unit_id.encode(), encode(e)) for e in events]
    producer = KafkaProducer(**config)
    producer.send(settings.topics.results, b"warm-up", key=b"w").get(10)
    t0 = time.perf_counter()
    for key, value in records:
        producer.send(settings.topics.results, value, key=key)
    producer.flush()
    elapsed = time.perf_counter() - t0
    producer.close()
    return len(records) / elapsed


def bare_rate_cached(bootstrap: str, events: list[Result]) -> float:
    return bare_rate(bootstrap, events, same_partitioner=True)


def emitter_rate(bootstrap: str, events: list[Result]) -> float:
    settings = settings_for(bootstrap)
    with Emitter(settings) as emitter:
        emitter.emit(events[0])
        emitter.flush(10)
        t0 = time.perf_counter()
        for event in events:
            emitter.emit(event)
        assert emitter.flush(60)
        elapsed = time.perf_counter() - t0
        assert emitter.stats().dropped == 0
    return len(events) / elapsed


def caller_costs(bootstrap: str, events: list[Result], rate: float | None) -> list[float]:
    with Emitter(settings_for(bootstrap), max_events=len(events) + 10) as emitter:
        emitter.emit(events[0])
        emitter.flush(10)
        costs = timed_calls(emitter.emit, events, rate)
        emitter.flush(60)
    return costs


def costs_broker_down(events: list[Result], rate: float | None) -> list[float]:
    """emit() costs with the broker stopped after the Emitter had connected."""
    with tansu() as bootstrap:
        emitter = Emitter(settings_for(bootstrap), max_events=len(events) + 10)
        emitter.emit(events[0])
        emitter.flush(10)
    time.sleep(1.0)  # broker gone; let the producer notice
    costs = timed_calls(emitter.emit, events, rate)
    stats = emitter.stats()
    assert stats.buffered >= len(events) and stats.consistent
    emitter.close(0)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10_000, help="paced emit rate, calls/s")
    args = parser.parse_args()
    events = results(args.events)
    gc.collect()

    runs: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    with tansu() as bootstrap:
        for i in range(args.runs):
            order = [bare_rate, bare_rate_cached, emitter_rate]
            order = order if i % 2 == 0 else order[::-1]
            for fn in order:
                add(fn.__name__, fn(bootstrap, events))
            for label, rate in (("burst", None), ("paced", args.rate)):
                noop_costs = timed_calls(noop, events, rate)
                add(f"noop {label} p50", median(noop_costs))
                add(f"noop {label} p99", p99(noop_costs))
                costs = caller_costs(bootstrap, events, rate)
                add(f"emit {label} p50", median(costs))
                add(f"emit {label} p99", p99(costs))
    for _ in range(args.runs):
        for label, rate in (("burst", None), ("paced", args.rate)):
            costs = costs_broker_down(events, rate)
            add(f"down {label} p50", median(costs))
            add(f"down {label} p99", p99(costs))

    m = {k: median(v) for k, v in runs.items()}
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
    for name, label in (("bare_rate", "bare"), ("bare_rate_cached", "bare+hash cache")):
        rate = m["emitter_rate"]
        rows.append(
            [
                "delivered events/s",
                f"{rate:,.0f}",
                f"{label} {m[name]:,.0f}",
                f"{rate / m[name]:.0%}",
            ]
        )
    print_table(
        f"Emitter: {args.events:,} results x {args.runs} runs, medians; paced: {args.rate:,.0f}/s",
        ["measure", "phasegate", "baseline", "ratio"],
        rows,
    )
    print("runs:", {k: [round(x, 2) for x in v] for k, v in runs.items()})


if __name__ == "__main__":
    main()
