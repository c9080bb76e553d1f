"""The compose file's Apache Kafka and ClickHouse images, started by testcontainers:
a contract v1 result survives a Kafka round trip, clickhouse-driver talks to the server.

Skipped, with the reason, where no Docker engine answers (see conftest.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from docker.types import Ulimit
from testcontainers.community.clickhouse import ClickHouseContainer
from testcontainers.community.kafka import KafkaContainer

from schemas import Result, decode, encode
from schemas.topics import PARTITIONS, Topic, Topics

pytestmark = pytest.mark.docker

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
STARTUP_S = 120


def compose_image(service: str) -> str:
    """The image docker-compose.yml runs for ``service``: tests use the same versions."""
    return yaml.safe_load(COMPOSE.read_text())["services"][service]["image"]


class ApacheKafkaContainer(KafkaContainer):
    """One KRaft node of the official ``apache/kafka`` image.

    testcontainers' KafkaContainer drives Confluent's image; this keeps its start-up
    protocol (wait for a script, write it once the mapped port is known) and its
    listeners, and runs the Apache image's own launcher.
    """

    def __init__(self, image: str) -> None:
        super().__init__(image)
        self.wait_for = re.compile(r"Kafka Server started")

    def configure(self) -> None:
        self.with_env("CLUSTER_ID", self.cluster_id)
        self.with_env("KAFKA_NODE_ID", "1")
        self.with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        self.with_env("KAFKA_LISTENERS", f"{self.listeners},CONTROLLER://0.0.0.0:9094")
        self.with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            f"{self.security_protocol_map},CONTROLLER:PLAINTEXT",
        )
        self.with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        self.with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9094")
        self.with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        self.with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")

    def tc_start(self) -> None:
        advertised = (
            f"{self.listener_name}://{self.get_bootstrap_server()},"
            "BROKER://$(hostname -i | cut -d' ' -f1):9092"
        )
        script = f"export KAFKA_ADVERTISED_LISTENERS={advertised}\nexec /etc/kafka/docker/run\n"
        self.create_file(script.encode(), self.TC_START_SCRIPT)


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    kafka = ApacheKafkaContainer(compose_image("kafka"))
    kafka.start(timeout=STARTUP_S)
    try:
        yield kafka.get_bootstrap_server()
    finally:
        kafka.stop()


@pytest.fixture(scope="module")
def clickhouse_url() -> Iterator[str]:
    nofile = Ulimit(name="nofile", soft=262144, hard=262144)
    with ClickHouseContainer(
        compose_image("clickhouse"), username="phasegate", password="phasegate", ulimits=[nofile]
    ) as clickhouse:
        yield clickhouse.get_connection_url()


def test_result_round_trip_through_apache_kafka(bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = Topics(f"phasegate.test{uuid.uuid4().hex[:8]}.").results
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        partitions = PARTITIONS[Topic.RESULTS]
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    sent = Result(
        event_id=uuid.uuid4(),
        rollout="kai-response",
        system="production",
        query_id="q-1",
        unit_id="u-42",
        success=True,
        confidence=0.93,
        latency_ms=120.5,
        rules=["r1"],
        weight=50,
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, key=sent.unit_id.encode(), value=encode(sent)).get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
    )
    try:
        received = [m for m in consumer]
    finally:
        consumer.close()
    assert len(received) == 1
    assert received[0].key == b"u-42"
    assert decode(received[0].value, Result) == sent


def test_clickhouse_driver_talks_to_the_server(clickhouse_url: str) -> None:
    from clickhouse_driver import Client

    client = Client.from_url(clickhouse_url)
    try:
        ((version,),) = client.execute("SELECT version()")
    finally:
        client.disconnect()
    wanted = compose_image("clickhouse").partition(":")[2]
    assert version.startswith(wanted + "."), f"server {version}, compose pins {wanted}"
