"""Events/s of the phasegate worker against two Faust baselines, on one private broker.

Every variant reads the same pre-produced results from the start of the topic in its own
consumer group: (a) ``bare`` only decodes, (b) ``naive`` keeps the metrics in Faust
windowed tables updated per event, and ``phasegate`` is the real worker with every
metric on. Rate = events / (time of the last event counted - time of the first). Also
prints the memory and wire size of one active window. Medians of ``--runs`` runs.

    python bench/bench_streams.py [--events 20000] [--runs 3]
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
from pathlib import Path

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import create_topics, free_port, median, print_table, tansu
from producers.simulator import generate, virtual_clock
from schemas.codec import encode
from schemas.events import Result
from schemas.settings import Settings
from streams.aggregate import WindowStats


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


def run_variant(variant: str, settings: Settings, n: int, workdir: Path) -> float:
    """Start one variant, poll its count until ``n``, return events/s."""
    port = free_port()
    env = {**os.environ, **settings.to_env(), "PHASEGATE_WORKER_PORT": str(port)}
    if variant == "phasegate":
        cmd = [sys.executable, "-m", "phasegate.cli", "worker", "--loglevel", "warning"]
        url, read = f"http://127.0.0.1:{port}/status", lambda s: s["counters"]["results"]
    else:
        cmd = [sys.executable, str(Path(__file__).with_name("streams_variants.py")), variant]
        url, read = f"http://127.0.0.1:{port}/count", lambda s: s["count"]
    log = (workdir / f"{variant}.log").open("ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    first = last = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = _get(url)
            count = read(status) if status else 0
            now = time.monotonic()
            if count and first is None:
                first = (now, count)
            if count >= n:
                last = (now, count)
                break
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    if first is None or last is None:
        tail = (workdir / f"{variant}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{variant} did not finish; its log ends:\n{tail}")
    return (last[1] - first[1]) / max(last[0] - first[0], 1e-6)


def window_memory(results: list[Result]) -> tuple[float, int]:
    """Python bytes held by one active window of 1,000 results, and its partial's size."""
    sample = results[:1000]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    stats = WindowStats()
    for r in sample:
        stats.update(r)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, len(stats.to_state().model_dump_json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = events(args.events)
    rates: dict[str, list[float]] = {"bare": [], "naive": [], "phasegate": []}
    with tansu() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for variant in rates:
                settings = Settings(
                    bootstrap_servers=bootstrap,
                    topic_prefix=f"b{run}{variant}.",
                    state_dir=Path(tmp) / f"{variant}{run}",
                )
                create_topics(settings)
                produce(settings, results)
                rates[variant].append(run_variant(variant, settings, args.events, Path(tmp)))
                print(f"run {run + 1} {variant}: {rates[variant][-1]:,.0f} events/s")
    bare, naive, ours = (median(rates[v]) for v in ("bare", "naive", "phasegate"))
    print_table(
        f"Stream worker, {args.events:,} events, median of {args.runs} runs",
        ["variant", "events/s", "vs bare agent", "vs naive tables"],
        [
            ["(a) bare Faust agent, decode only", f"{bare:,.0f}", "1.00x", f"{bare / naive:.1f}x"],
            ["(b) naive Faust windowed tables", f"{naive:,.0f}", f"{naive / bare:.2f}x", "1.0x"],
            [
                "phasegate worker, every metric",
                f"{ours:,.0f}",
                f"{ours / bare:.2f}x",
                f"{ours / naive:.1f}x",
            ],
        ],
    )
    held, wire = window_memory(results)
    print_table(
        "One active window (1,000 results of one rollout)",
        ["measure", "bytes"],
        [["Python memory held", f"{held:,.0f}"], ["partial on the wire (JSON)", f"{wire:,}"]],
    )
    print("goals: phasegate >= 10x naive and >= 50% of bare")


if __name__ == "__main__":
    main()
