"""Events/s and CPU an event of the phasegate worker beside the bare clients and Faust.

Every variant reads the same pre-produced results from the start of one topic, in its
own consumer group, in the same run: the bare client loops (``bench/client_loops.py``:
aiokafka ``getmany``, kafka-python ``poll``, confluent-kafka if installed) fetch and do
nothing else; (a) ``bare`` is a Faust agent that only decodes, (b) ``naive`` keeps the
metrics in Faust windowed tables updated per event (the Faust ones are slow: they read a
fifth and a fiftieth of the events), and ``phasegate`` is the real worker with every
metric on. Rate and CPU are
taken from the first event counted to the last. Also prints the memory and wire size of
one active window. Medians of ``--runs`` runs.

    python bench/bench_streams.py [--events 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import client_loops
from bench.common import create_topics, free_port, median, print_table, process_cpu, tansu
from producers.simulator import generate, virtual_clock
from schemas.codec import encode
from schemas.events import Result
from schemas.settings import Settings
from streams.aggregate import WindowStats

ROOT = Path(__file__).resolve().parent.parent  # every variant imports this checkout's code
POLL_S = 0.1  # between two reads of a variant's count (each costs the variant some CPU)
FAUST = {  # name: (variant, the share of the events it reads)
    "(a) bare Faust agent, decode only": ("bare", 5),
    "(b) naive Faust windowed tables": ("naive", 50),
}
WORKER = "phasegate worker, every metric"
CEILING = "bare aiokafka getmany, no work"


def events(n: int, seed: int = 7) -> list[Result]:
    """``n`` results of healthy simulated traffic at 50%, stamped the last n ms."""
    clock = virtual_clock(datetime.now(UTC) - timedelta(seconds=n / 1000), rate=1000)
    return [e for e in generate("healthy", n, seed=seed, clock=clock) if isinstance(e, Result)]


def produce(settings: Settings, results: list[Result]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, batch_size=256 * 1024
    )
    for r in results:
        producer.send(settings.topics.results, key=r.unit_id.encode(), value=encode(r))
    producer.flush()
    producer.close()


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return json.load(resp)
    except OSError:
        return None


def run_variant(variant: str, settings: Settings, n: int, workdir: Path) -> tuple[float, float]:
    """Start one variant, poll its count until ``n``; its events/s and CPU us an event."""
    port = free_port()
    env = {**os.environ, **settings.to_env(), "PHASEGATE_WORKER_PORT": str(port)}
    if variant == "phasegate":
        cmd = [sys.executable, "-m", "phasegate.cli", "worker", "--loglevel", "warning"]
        url, read = f"http://127.0.0.1:{port}/status", lambda s: s["counters"]["results"]
    else:
        cmd = [sys.executable, "-m", "bench.streams_variants", variant]
        url, read = f"http://127.0.0.1:{port}/count", lambda s: s["count"]
    log = (workdir / f"{variant}.log").open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    first = last = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = _get(url)
            count = read(status) if status else 0
            point = (time.monotonic(), process_cpu(proc.pid), count)
            if count and first is None:
                first = point
            if count >= n:
                last = point
                break
            time.sleep(POLL_S)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    if first is None or last is None or last[2] == first[2]:
        tail = (workdir / f"{variant}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{variant} did not finish; its log ends:\n{tail}")
    counted = last[2] - first[2]
    return counted / max(last[0] - first[0], 1e-6), (last[1] - first[1]) / counted * 1e6


def measure(run: int, bootstrap: str, results: list[Result], tmp: Path) -> dict[str, tuple]:
    """One run: every variant over one freshly produced topic."""
    settings = Settings(
        bootstrap_servers=bootstrap, topic_prefix=f"b{run}.", state_dir=tmp / f"run{run}"
    )
    create_topics(settings)
    produce(settings, results)
    n, topic = len(results), settings.topics.results
    todo = {
        f"bare {name}, no work": partial(loop, bootstrap, topic, n)
        for name, loop in client_loops.loops().items()
    }
    for name, (variant, share) in FAUST.items():
        todo[name] = partial(run_variant, variant, settings, n // share, tmp)
    todo[WORKER] = partial(run_variant, "phasegate", settings, n, tmp)
    out = {}
    for name, measured in todo.items():
        rate, cpu = out[name] = measured()[:2]
        print(f"run {run + 1} {name}: {rate:,.0f} events/s, {cpu:.1f} us CPU an event", flush=True)
    return out


def window_memory(results: list[Result]) -> tuple[float, int]:
    """Python bytes held by one active window of 1,000 results (added as stage 1 adds a
    batch, once the interpreter's type caches are warm), and its partial's size."""
    sample = results[:1000]
    WindowStats().add_results(sample)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    stats = WindowStats()
    stats.add_results(sample)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, len(stats.to_state().model_dump_json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = events(args.events)
    with tansu() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        runs = [measure(run, bootstrap, results, Path(tmp)) for run in range(args.runs)]
    rate = {name: median([r[name][0] for r in runs]) for name in runs[0]}
    cpu = {name: median([r[name][1] for r in runs]) for name in runs[0]}
    share = {name: median([r[name][0] / r[CEILING][0] for r in runs]) for name in runs[0]}
    print_table(
        f"Stream worker, {args.events:,} events, median of {args.runs} runs, "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        ["variant", "events/s", "CPU us/event", "of aiokafka getmany (per run)"],
        [[n, f"{rate[n]:,.0f}", f"{cpu[n]:.1f}", f"{share[n]:.2f}"] for n in rate],
    )
    held, wire = window_memory(results)
    print_table(
        "One active window (1,000 results of one rollout)",
        ["measure", "bytes"],
        [["Python memory held", f"{held:,.0f}"], ["partial on the wire (JSON)", f"{wire:,}"]],
    )
    print("goals: phasegate >= 0.25 of aiokafka getmany, <= 20 us CPU an event")


if __name__ == "__main__":
    main()
