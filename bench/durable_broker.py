"""What the durable local broker costs and whether it keeps every record, per local S3.

Tansu on ``s3://`` at s3rver as the stack starts it (``cas``: phasegate/stack/s3rver_cas.js,
conditional writes and atomic object writes) against plain s3rver 3.7.1 (the baseline,
what the stack ran before) and ``memory://`` (no durability), all in the same run:

- a bare kafka-python producer (acks=all, linger 20 ms, 256 KiB batches) sending
  ``--messages`` of 200 bytes to a 4-partition topic, and a consumer reading them back:
  messages/s (median of ``--runs``), and how many of the acked ones were read back;
- a restart: ``--messages`` acked, then 100 by a new producer (seconds until acked: the
  baseline), broker stopped and started, 100 more by a new producer at once: seconds
  from start until the broker answered and until those 100 were acked, the offset they
  got, and how many of all the acked records were read back;
- three producers racing on one partition (100 records each, no linger, so many small
  requests): read back of acked.

    python -m bench.durable_broker [--messages 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from bench.common import free_port, median, print_table
from phasegate.stack.process import ManagedProcess
from phasegate.stack.s3 import CAS_SCRIPT
from phasegate.stack.services import local_services
from schemas.settings import Settings

VARIANTS = ("memory", "s3rver (plain)", "s3rver + conditional writes")
PAYLOAD = b"x" * 200


def plain(s3: ManagedProcess) -> ManagedProcess:
    """The same s3rver without the conditional-writes launcher (the baseline)."""
    at = list(s3.argv).index(str(CAS_SCRIPT))
    package = Path(s3.argv[at + 1])
    argv = [*s3.argv[:at], str(package / "bin" / "s3rver.js"), *s3.argv[at + 2 :]]
    return dataclasses.replace(s3, argv=argv)


@contextmanager
def broker(variant: str, root: Path) -> Iterator[tuple[str, ManagedProcess]]:
    """(bootstrap, broker process) of one variant, stopped at the end."""
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        broker_storage="memory://tansu/" if variant == "memory" else "s3://tansu/",
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        state_dir=root,
    )
    processes = [s.process for s in local_services(settings, with_clickhouse=False)]
    assert all(processes)
    if variant == "s3rver (plain)":
        processes[0] = plain(processes[0])
    try:
        for process in processes:
            process.start(timeout=120)
        yield settings.bootstrap_servers, processes[-1]
    finally:
        for process in reversed(processes):
            process.stop()


def create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def produce(
    bootstrap: str, topic: str, n: int, tag: bytes = b"", partition: int | None = None, linger=20
):
    """(seconds, acked values, offset of the first) for ``n`` records, flushed."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=linger, batch_size=256 * 1024
    )
    try:
        started = time.perf_counter()
        values = [tag + b"%d-" % i + PAYLOAD for i in range(n)]
        futures = [producer.send(topic, v, partition=partition) for v in values]
        producer.flush(120)
        first = futures[0].get(30).offset
        acked = [v for v, f in zip(values, futures, strict=True) if f.succeeded()]
        return time.perf_counter() - started, acked, first
    finally:
        producer.close()


def consume(bootstrap: str, topic: str) -> tuple[float, list[bytes]]:
    """(seconds, values) of every record of ``topic`` from its start (till 3 quiet polls)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_bytes=16 << 20
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        values: list[bytes] = []
        started, last, quiet = time.perf_counter(), time.perf_counter(), 0
        while quiet < 3:
            batch = consumer.poll(timeout_ms=500)
            quiet = 0 if batch else quiet + 1
            for rows in batch.values():
                values.extend(r.value for r in rows)
                last = time.perf_counter()
        return last - started, values
    finally:
        consumer.close()


def kept(acked: list[bytes], read: list[bytes]) -> str:
    return f"{len(set(acked) & set(read)):,} of {len(acked):,}"


def throughput(bootstrap: str, n: int, runs: int) -> dict[str, str]:
    produced, consumed, read_back = [], [], []
    for run in range(runs):
        topic = f"t{run}"
        create(bootstrap, topic, 4)
        seconds, acked, _ = produce(bootstrap, topic, n)
        produced.append(len(acked) / seconds)
        seconds, values = consume(bootstrap, topic)
        consumed.append(len(values) / seconds)
        read_back.append(kept(acked, values))
    return {
        "produce": median(produced),
        "consume": median(consumed),
        "read back": "; ".join(sorted(set(read_back))),
    }


def restart(bootstrap: str, process: ManagedProcess, n: int) -> dict[str, str]:
    create(bootstrap, "r", 1)
    _, acked, _ = produce(bootstrap, "r", n, b"old")
    before, pre, _ = produce(bootstrap, "r", 100, b"pre")
    process.stop()
    started = time.monotonic()
    process.start(timeout=60)
    ready = time.monotonic() - started
    _, more, first = produce(bootstrap, "r", 100, b"new")
    after = time.monotonic() - started
    _, values = consume(bootstrap, "r")
    return {
        "ready": ready,
        "acked before": before,
        "acked after": after,
        "new at": f"{first:,} (want {n + 100:,})",
        "after restart": kept(acked + pre + more, values),
    }


def race(bootstrap: str) -> str:
    create(bootstrap, "race", 1)
    acked: list[bytes] = []

    def producer(tag: bytes) -> None:
        acked.extend(produce(bootstrap, "race", 100, tag, partition=0, linger=0)[1])

    threads = [threading.Thread(target=producer, args=(t,)) for t in (b"a", b"b", b"c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return kept(acked, consume(bootstrap, "race")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows = {}
    for variant in VARIANTS:
        with tempfile.TemporaryDirectory() as root, broker(variant, Path(root)) as (bs, proc):
            row = throughput(bs, args.messages, args.runs)
            row.update(restart(bs, proc, args.messages) if variant != "memory" else {})
            row["racing"] = race(bs)
            rows[variant] = row
            print(variant, row, flush=True)
    base = rows["s3rver (plain)"]
    columns = [
        "broker storage", "produce msg/s", "vs plain", "consume msg/s", "vs plain",
        "read back", "100 acked s", "restart: ready s", "100 acked s", "new records at",
        "kept after restart",
        "3 producers, 1 partition",
    ]  # fmt: skip
    table = [
        [
            variant,
            f"{row['produce']:,.0f}",
            f"{row['produce'] / base['produce']:.2f}",
            f"{row['consume']:,.0f}",
            f"{row['consume'] / base['consume']:.2f}",
            row["read back"],
            *(
                [f"{row[k]:.2f}" for k in ("acked before", "ready", "acked after")]
                if "ready" in row
                else ["-"] * 3
            ),
            row.get("new at", "- (log gone)"),
            row.get("after restart", "-"),
            row["racing"],
        ]
        for variant, row in rows.items()
    ]
    print_table(
        f"durable broker: {args.messages:,} messages of 200 B, median of {args.runs} runs",
        columns,
        table,
        width=220,
    )


if __name__ == "__main__":
    main()
