"""A durable local broker: Tansu on s3rver keeps records and group offsets across restarts."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from phasegate.stack import ensure_topics, free_port
from phasegate.stack.services import local_services
from schemas.settings import Settings

pytestmark = pytest.mark.timeout(300)


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

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for i in range(10):
        producer.send(settings.topics.results, key=b"k", value=b"second-%d" % i)
    producer.flush()
    producer.close()
    assert consume(settings, "g", 10) == [b"second-%d" % i for i in range(10)]
    assert len(consume(settings, "fresh", 60)) == 60
