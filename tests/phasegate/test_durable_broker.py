"""A durable local broker: Tansu on s3rver keeps records and group offsets across restarts,
and every acked record of producers racing on one partition."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from phasegate.stack import ensure_topics, free_port
from phasegate.stack.services import local_services
from schemas.settings import Settings

pytestmark = [pytest.mark.timeout(300), pytest.mark.service]


@pytest.fixture
def durable(tmp_path):
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Node.js and npm for the durable broker", pytrace=False)
        pytest.skip("no Node.js/npm: the durable broker's local S3 (s3rver) needs them")
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        broker_storage="s3://tansu/",
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        state_dir=tmp_path,
        topic_prefix="d.",
    )
    services = local_services(settings, with_clickhouse=False)
    assert [s.name for s in services] == ["s3", "broker"]
    yield settings, [s.process for s in services]
    for process in reversed([s.process for s in services]):
        process.stop()


def consume(settings: Settings, group: str, expect: int) -> list[bytes]:
    """Read up to ``expect`` records as ``group`` (20 s at most), then commit."""
    consumer = KafkaConsumer(
        settings.topics.results,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(values) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(r.value for r in records)
        consumer.commit()
        return values
    finally:
        consumer.close()


def test_records_and_committed_offsets_survive_a_restart_of_both(durable):
    settings, processes = durable
    for process in processes:
        process.start(timeout=120)  # the first start installs s3rver with npm
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for i in range(50):
        producer.send(settings.topics.results, key=b"k", value=b"first-%d" % i)
    producer.flush()
    producer.close()
    assert len(consume(settings, "g", 50)) == 50

    for process in reversed(processes):
        assert process.stop()
    for process in processes:
        process.start(timeout=60)

    # the first request after the restart is a produce: the log goes on at offset 50
    assert produce(settings, [b"second-%d" % i for i in range(10)]) == list(range(50, 60))
    assert consume(settings, "g", 10) == [b"second-%d" % i for i in range(10)]
    assert len(consume(settings, "fresh", 60)) == 60


def produce(settings: Settings, values: list[bytes], partition: int = 0) -> list[int]:
    """Send ``values`` one request each to one partition; their offsets, once acked."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        futures = [producer.send(settings.topics.results, v, partition=partition) for v in values]
        producer.flush()
        return [f.get(10).offset for f in futures]
    finally:
        producer.close()


def test_producers_racing_on_one_partition_keep_every_acked_record(durable):
    """Plain s3rver kept about half: both produces of a race got the same offset."""
    settings, processes = durable
    for process in processes:
        process.start(timeout=120)
    ensure_topics(settings)
    offsets: dict[bytes, list[int]] = {}

    def producer(tag: bytes) -> None:
        offsets[tag] = produce(settings, [b"%s-%d" % (tag, i) for i in range(40)])

    threads = [threading.Thread(target=producer, args=(t,)) for t in (b"a", b"b", b"c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    acked = [o for tag in offsets.values() for o in tag]
    assert len(acked) == 120 and len(set(acked)) == 120, "two batches acked at one offset"
    values = consume(settings, "race", 120)
    assert sorted(values) == sorted(
        b"%s-%d" % (t, i) for t in (b"a", b"b", b"c") for i in range(40)
    )
