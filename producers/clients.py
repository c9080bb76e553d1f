"""The Kafka clients the Emitter's sender thread hands records to.

``confluent-kafka`` (librdkafka: batching, compression and the network in C; a
dependency, the sink's consumer too): the sender thread costs 2.6-3.9 us of CPU
an event, encoding included, where with ``kafka-python``'s per-record ``send()`` it
costs 36-52 (bench/bench_emit.py).
``kafka-python`` (a fixed dependency) otherwise, or when ``emit_client`` names it.
Both get the same settings and send to the same partitions (the Java client's murmur2 of
the key). Each reports its failed records to the Emitter, which retries them, and how
many records it still holds: the Emitter counts the rest as delivered.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from schemas.kafka_security import LIBRDKAFKA_LOGGER, librdkafka_options
from schemas.settings import Settings

log = logging.getLogger(__name__)

Record = tuple[str, str | bytes, bytes]  # topic, key, value
_CODEC_PACKAGES = {"lz4": "lz4", "zstd": "zstandard", "snappy": "python-snappy"}


@dataclass(frozen=True)
class Tuning:
    """What the Emitter asks of either client."""

    client_id: str
    linger_ms: int
    batch_size: int
    delivery_timeout_s: float
    max_events: int
    max_bytes: int


@dataclass
class Failed:
    """Deliveries failed since the last look: the records (to retry) and the last error
    (a record's or the connection's)."""

    records: list[Record] = field(default_factory=list)
    error: BaseException | None = None


class Client(Protocol):
    """One producer connection, used by the sender thread alone (closed once it ended)."""

    name: ClassVar[str]
    compression: str

    def produce(self, topic: str, value: bytes, key: str | bytes) -> object:
        """Hand over one record; raises if the client refuses it."""

    def poll(self) -> Failed:
        """Serve the client's events; the failures since the last call."""

    def held(self) -> int:
        """Records handed over and neither delivered nor returned by ``poll()`` as failed
        (or more, never fewer)."""

    def flush(self, timeout: float) -> None:
        """Send what lingers at once; wait up to ``timeout`` for the deliveries."""

    def close(self, timeout: float) -> None:
        """Deliver within ``timeout``, then abandon the rest; never raises."""


def client_class(settings: Settings) -> type[KafkaPython] | type[ConfluentKafka]:
    """The client ``settings.emit_client`` names (``auto``: confluent-kafka if installed)."""
    name = settings.emit_client
    installed = importlib.util.find_spec("confluent_kafka") is not None
    if name == "confluent-kafka" and not installed:
        raise ValueError(
            "emit_client confluent-kafka needs the confluent-kafka package "
            "(pip install confluent-kafka)"
        )
    fast = name == "confluent-kafka" or (name == "auto" and installed)
    return ConfluentKafka if fast else KafkaPython


class KafkaPython:
    """kafka-python's ``KafkaProducer``; deliveries read off the futures, in order."""

    name: ClassVar[str] = "kafka-python"

    def __init__(self, config: dict[str, Any]) -> None:
        from kafka import KafkaProducer

        self.compression = config["compression_type"] or "none"
        self._producer = KafkaProducer(**config)  # raises while no broker answers
        self._send = self._producer.send
        self._futures: deque[tuple[Any, Record]] = deque()

    @staticmethod
    def config(settings: Settings, tuning: Tuning, options: dict[str, Any]) -> dict[str, Any]:
        """The producer's options, checked: a misspelt option or missing codec raises now."""
        from kafka import KafkaProducer, codec

        compression = settings.emit_compression
        config = {
            "bootstrap_servers": _servers(settings),
            "client_id": tuning.client_id,
            "acks": "all",
            "enable_idempotence": False,
            "compression_type": None if compression == "none" else compression,
            "linger_ms": tuning.linger_ms,
            "batch_size": tuning.batch_size,
            "max_block_ms": 1000,  # metadata waits block only the sender thread
            "bootstrap_timeout_ms": 2000,
            "request_timeout_ms": _request_timeout_ms(tuning),
            "delivery_timeout_ms": int(tuning.delivery_timeout_s * 1000) + tuning.linger_ms,
            "reconnect_backoff_ms": 100,
            "reconnect_backoff_max_ms": 1000,
            "partitioner": _hash_cached_partitioner(),
            **settings.kafka_options(),
            **options,
        }
        unknown = sorted(set(config) - set(KafkaProducer.DEFAULT_CONFIG))
        if unknown:
            raise ValueError(f"unknown KafkaProducer options: {', '.join(unknown)}")
        if compression != "none" and not getattr(codec, f"has_{compression}")():
            package = _CODEC_PACKAGES[compression]
            raise ValueError(f"{compression} compression needs the {package} package")
        return config

    def produce(self, topic: str, value: bytes, key: str) -> None:
        """Keys are the Emitter's here (str): failed records come back as they went."""
        self._futures.append((self._send(topic, value, key=key.encode()), (topic, key, value)))

    def poll(self) -> Failed:
        """Reads the futures at the head (no callback per record keeps sends cheap)."""
        futures, failed = self._futures, Failed()
        while futures and futures[0][0].is_done:
            future, record = futures.popleft()
            if future.exception is not None:
                failed.records.append(record)
                failed.error = future.exception
        return failed

    def held(self) -> int:
        return len(self._futures)

    def flush(self, timeout: float) -> None:
        try:
            self._producer.flush(timeout)
        except Exception as exc:  # KafkaTimeoutError: still in flight
            log.debug("producer flush: %s", exc)

    def close(self, timeout: float) -> None:
        """kafka-python's ``close()`` raises from its internal ``flush()`` when records are
        still pending at the timeout, before it force-closes its network thread (which then
        keeps reconnecting forever): abort the pending batches first in that case."""
        producer = self._producer
        try:
            producer.close(timeout=timeout)
            return
        except Exception as exc:
            log.debug("producer close: %s", exc)
        sender = getattr(producer, "_sender", None)
        try:
            if sender is not None:
                sender.force_close()
                sender.join(1.0)
            producer.close(timeout=0)
        except Exception as exc:  # pragma: no cover - closing must not raise
            log.debug("producer force close: %s", exc)


class ConfluentKafka:
    """confluent-kafka's ``Producer``, handed records directly (``produce`` is its own);
    only failed deliveries are reported one by one (``delivery.report.only.error``: a
    callback per delivered record cost ~0.7 us an event).

    ``held()`` is ``len(producer)``: records not yet delivered or reported, plus queued
    events (never fewer). librdkafka retries on its own until the delivery timeout;
    connection errors come through ``error_cb``; its log lines go to the ``librdkafka``
    logger at DEBUG (the Emitter reports failures itself, once per interval).
    """

    name: ClassVar[str] = "confluent-kafka"

    def __init__(self, config: dict[str, Any]) -> None:
        from confluent_kafka import KafkaException, Producer

        self.compression = config["compression.type"]
        self._exception = KafkaException
        self._failed = Failed()
        callbacks = {"on_delivery": self._delivery_failed, "error_cb": self._error}
        self._producer = Producer({**config, **callbacks, "logger": LIBRDKAFKA_LOGGER})
        self.produce = self._producer.produce  # (topic, value, key): no Python in between

    @staticmethod
    def config(settings: Settings, tuning: Tuning, options: dict[str, Any]) -> dict[str, Any]:
        """The producer's options; librdkafka checks them as a producer is built: now."""
        from confluent_kafka import KafkaException, Producer

        config = {
            "bootstrap.servers": ",".join(_servers(settings)),
            "client.id": tuning.client_id,
            "acks": "all",
            "enable.idempotence": False,
            "compression.type": settings.emit_compression,
            "linger.ms": tuning.linger_ms,
            "batch.size": tuning.batch_size,
            "request.timeout.ms": _request_timeout_ms(tuning),
            "message.timeout.ms": int(tuning.delivery_timeout_s * 1000) + tuning.linger_ms,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "partitioner": "murmur2_random",  # the Java client's: kafka-python's partitions
            "queue.buffering.max.messages": tuning.max_events + 1,  # the Emitter bounds it
            "queue.buffering.max.kbytes": tuning.max_bytes // 1024 + 1024,
            "delivery.report.only.error": True,
            **librdkafka_options(settings),
            **options,
        }
        try:
            Producer({**config, "logger": LIBRDKAFKA_LOGGER})
        except KafkaException as exc:
            raise ValueError(f"confluent-kafka refused its options: {exc}") from None
        return config

    def poll(self) -> Failed:
        self._producer.poll(0)
        failed, self._failed = self._failed, Failed()
        return failed

    def held(self) -> int:
        return len(self._producer)

    def flush(self, timeout: float) -> None:
        self._producer.flush(timeout)

    def close(self, timeout: float) -> None:
        producer = self._producer
        try:
            if producer.flush(timeout):
                producer.purge()
                producer.flush(0)
            producer.close()
        except Exception as exc:  # pragma: no cover - closing must not raise
            log.debug("producer close: %s", exc)

    def _delivery_failed(self, error: Any, message: Any) -> None:
        self._failed.records.append((message.topic(), message.key(), message.value()))
        self._failed.error = self._exception(error)

    def _error(self, error: Any) -> None:
        self._failed.error = self._exception(error)


def _servers(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()]


def _request_timeout_ms(tuning: Tuning) -> int:
    return int(min(10.0, tuning.delivery_timeout_s / 2) * 1000)


def _hash_cached_partitioner() -> Any:
    """kafka-python's default partitioner (Java-compatible murmur2 of the key) with the
    hash cached per key: units and queries repeat, and the pure-Python murmur2 costs
    about 4 us per event, 10% of the sender's time."""
    from kafka.partitioner.default import DefaultPartitioner, murmur2

    class HashCachedPartitioner(DefaultPartitioner):
        def __init__(self, limit: int = 100_000) -> None:
            self._hashes: dict[bytes, int] = {}
            self._limit = limit

        def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # type: ignore[no-untyped-def]
            if serialized_key is None:
                return super().partition(topic, key, None, value, serialized_value, cluster)
            idx = self._hashes.get(serialized_key)
            if idx is None:
                if len(self._hashes) >= self._limit:
                    self._hashes.clear()
                idx = self._hashes[serialized_key] = murmur2(serialized_key) & 0x7FFFFFFF
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                raise ValueError(f"Topic {topic} not found in ClusterMetadata")
            return sorted(partitions)[idx % len(partitions)]

    return HashCachedPartitioner()
