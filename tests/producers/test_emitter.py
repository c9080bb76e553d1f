"""The Emitter against a real broker: exact delivery, outages, counters, the caller's safety;
each test with each client (kafka-python, confluent-kafka)."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import ValidationError

from phasegate.stack import ensure_topics
from phasegate.testing.topics import private_broker, read_topic, read_values
from producers.clients import ConfluentKafka, KafkaPython, client_class
from producers.emitter import Emitter
from schemas.codec import decode
from schemas.events import Feedback, Result
from schemas.settings import Settings

COMPRESSIONS = ["none", "gzip", "lz4", "zstd", "snappy"]
CLIENTS = ["kafka-python", "confluent-kafka"]


@pytest.fixture(autouse=True, params=CLIENTS)
def client(request, monkeypatch) -> str:
    """The Emitter's client in this test (every Settings made after reads it)."""
    if request.param == "confluent-kafka":
        pytest.importorskip("confluent_kafka", reason="the fast path: pip install confluent-kafka")
    monkeypatch.setenv("PHASEGATE_EMIT_CLIENT", request.param)
    return request.param


def result(i: int, tag: str = "t") -> Result:
    return Result(
        rollout="r",
        system="production",
        query_id=f"{tag}-{i}",
        unit_id=f"u{i % 97}",
        success=i % 10 != 0,
        confidence=0.9,
        latency_ms=float(i % 300),
        rules=["a"],
        weight=50,
    )


@pytest.fixture
def own(tmp_path):
    """(broker process, settings) of a broker this test may stop; not started yet."""
    yield from private_broker(tmp_path, "own.")


def test_emits_exactly_what_was_given(kafka_settings):
    events = [result(i) for i in range(2000)]
    with Emitter(kafka_settings) as emitter:
        assert all(emitter.emit(e) for e in events)
        assert emitter.emit_feedback(
            "r", "t-1", "production", "correct", "good", rules=("a",), segment="de"
        )
        assert emitter.flush(20)
        stats = emitter.stats()
    assert (stats.queued, stats.sent, stats.dropped, stats.buffered) == (2001, 2001, 0, 0)
    assert stats.buffered_bytes == 0
    got = [
        decode(v, Result)
        for v in read_values(kafka_settings.bootstrap_servers, kafka_settings.topics.results, 2000)
    ]
    assert sorted(got, key=lambda r: r.query_id) == sorted(events, key=lambda r: r.query_id)
    feedback = read_values(kafka_settings.bootstrap_servers, kafka_settings.topics.feedback, 1)
    got = decode(feedback[0], Feedback)
    assert (got.comment, got.rules, got.segment) == ("good", ["a"], "de")


def test_flush_sends_at_once_what_lingers(kafka_settings):
    with Emitter(kafka_settings, linger_ms=3000) as emitter:
        assert emitter.emit(result(0)) and emitter.flush(10)  # connected
        t0 = time.perf_counter()
        assert all(emitter.emit(result(i)) for i in range(100))
        assert emitter.flush(10)
        assert time.perf_counter() - t0 < 1.5  # not the 3 s of the linger
        assert emitter.stats().sent == 101


def test_threads_emitting_through_close_are_each_counted_once(kafka_settings):
    import threading

    emitter = Emitter(kafka_settings, max_events=3000)
    assert emitter.emit(result(0, "warm")) and emitter.flush(20)  # connected: close can send
    accepted, calls = [0] * 4, [0] * 4
    closed = threading.Event()

    def emit_until_closed(i: int) -> None:
        """Emit until one emit began after close returned (so each thread meets it)."""
        while True:
            after = closed.is_set()
            accepted[i] += emitter.emit(result(calls[i], f"th{i}"))
            calls[i] += 1
            if after:
                return

    threads = [threading.Thread(target=emit_until_closed, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    emitter.close(timeout=0.2)  # while they emit: some sent, some full, some closed
    closed.set()
    for t in threads:
        t.join()
    stats = emitter.stats()
    assert stats.queued == 1 + sum(calls) and stats.buffered == 0 and stats.consistent
    assert 1 < stats.sent <= 1 + sum(accepted) and stats.dropped_by_reason["closed"] >= 4


def test_invalid_feedback_and_foreign_objects_never_raise(kafka_settings):
    with Emitter(kafka_settings) as emitter:
        assert emitter.emit_feedback("r", "q", "production", "great") is False  # bad verdict
        assert emitter.emit({"not": "an event"}) is False  # type: ignore[arg-type]
        stats = emitter.stats()
    assert stats.dropped_by_reason == {"invalid": 1} and stats.consistent


def test_full_buffer_drops_newest_and_counts(own):
    _broker, settings = own
    emitter = Emitter(settings, max_events=100)  # broker not started: nothing leaves
    accepted = [emitter.emit(result(i)) for i in range(150)]
    assert accepted == [True] * 100 + [False] * 50
    stats = emitter.stats()
    assert (stats.queued, stats.buffered, stats.dropped, stats.sent) == (150, 100, 50, 0)
    assert emitter.close(timeout=0.5) is False
    stats = emitter.stats()
    assert stats.dropped == 150 and stats.buffered == 0 and stats.consistent
    assert stats.dropped_by_reason == {"full": 50, "close": 100}
    assert emitter.emit(result(0)) is False  # closed


@pytest.mark.service
def test_broker_down_at_start_then_up(own):
    broker, settings = own
    with Emitter(settings) as emitter:
        t0 = time.perf_counter()
        assert all(emitter.emit(result(i)) for i in range(300))
        assert time.perf_counter() - t0 < 0.5  # never blocks on the missing broker
        time.sleep(1.0)
        assert emitter.stats().buffered == 300
        broker.start()
        ensure_topics(settings)
        assert emitter.flush(30)
        assert emitter.stats().sent == 300
    assert len(read_values(settings.bootstrap_servers, settings.topics.results, 300)) == 300


@pytest.mark.service
def test_broker_outage_mid_run(own, caplog):
    caplog.set_level(logging.INFO, logger="producers.emitter")
    broker, settings = own
    broker.start()
    ensure_topics(settings)
    with Emitter(settings, error_after_s=0.5) as emitter:
        for i in range(500):
            emitter.emit(result(i, "before"))
        assert emitter.flush(20)

        broker.stop()
        worst = 0.0
        for i in range(500):
            t0 = time.perf_counter()
            assert emitter.emit(result(i, "during"))
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(0.002)
        assert worst < 0.05
        stats = emitter.stats()
        assert stats.consistent and stats.buffered > 0
        time.sleep(0.3)
        errors = [r for r in caplog.records if r.name == "producers.emitter"]
        errors = [r for r in errors if r.levelno >= logging.WARNING]
        assert [r.levelname for r in errors] == ["ERROR"]  # once per interval, not per event
        assert "event delivery failing" in errors[0].getMessage()

        broker.start()  # a fresh in-memory broker: the "before" events are gone with it
        ensure_topics(settings)
        for i in range(500):
            emitter.emit(result(i, "after"))
        assert emitter.flush(45), emitter.stats()
        stats = emitter.stats()
        time.sleep(0.3)
    assert any("recovered" in r.getMessage() for r in caplog.records)
    assert (stats.queued, stats.sent, stats.dropped, stats.buffered) == (1500, 1500, 0, 0)
    values = read_values(settings.bootstrap_servers, settings.topics.results, 1000)
    ids = {decode(v, Result).query_id for v in values}
    assert {f"during-{i}" for i in range(500)} <= ids
    assert {f"after-{i}" for i in range(500)} <= ids


@pytest.mark.service
def test_close_with_broker_gone_stops_every_thread(own):
    import threading

    broker, settings = own
    broker.start()
    ensure_topics(settings)
    emitter = Emitter(settings)
    emitter.emit(result(0))
    assert emitter.flush(10)
    broker.stop()
    for i in range(100):
        emitter.emit(result(i))
    assert emitter.close(timeout=0.3) is False
    stats = emitter.stats()
    assert stats.consistent and stats.sent == 1 and stats.dropped == 100
    time.sleep(0.3)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("phasegate-emitter")]


@pytest.mark.parametrize("client", ["kafka-python"], indirect=True)
def test_hash_cached_partitioner_agrees_with_kafka_python(client):
    from kafka.partitioner.default import DefaultPartitioner

    from producers.clients import _hash_cached_partitioner

    class Cluster:  # the three lookups a partitioner makes
        def topics(self):
            return {"t"}

        def partitions_for_topic(self, topic):
            return {0, 1, 2, 3}

        def available_partitions_for_topic(self, topic):
            return {0, 1, 2, 3}

    cached, default = _hash_cached_partitioner(), DefaultPartitioner()
    keys = [f"user-{i}".encode() for i in range(2000)] * 2
    got = [cached.partition("t", None, k, None, None, Cluster()) for k in keys]
    assert got == [default.partition("t", None, k, None, None, Cluster()) for k in keys]
    assert set(got) == {0, 1, 2, 3}


def test_byte_bound_drops_newest(own):
    _broker, settings = own
    emitter = Emitter(settings, max_bytes=10_000)  # broker not started: nothing leaves
    accepted = sum(emitter.emit(result(i)) for i in range(100))  # the sender may encode now
    deadline = time.monotonic() + 5  # between connection attempts (2 s each)
    while emitter.stats().buffered_bytes < 10_000 and time.monotonic() < deadline:
        time.sleep(0.05)  # the sender encodes what the byte budget allows
    stats = emitter.stats()
    assert 10_000 <= stats.buffered_bytes < 10_000 + 1_000  # at most one event over
    assert stats.dropped == 100 - accepted < 100
    assert emitter.emit(result(100)) is False
    assert emitter.stats().dropped_by_reason == {"full": 101 - accepted}
    emitter.close(0.2)
    assert emitter.stats().consistent


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_delivers_decodable_events(kafka_settings, compression):
    settings = kafka_settings.model_copy(update={"emit_compression": compression})
    events = [result(i, compression) for i in range(500)]
    with Emitter(settings) as emitter:
        assert all(emitter.emit(e) for e in events)
        assert emitter.flush(20)
        assert emitter._client.compression == compression
    values = read_values(settings.bootstrap_servers, settings.topics.results, 500)
    got = sorted((decode(v, Result) for v in values), key=lambda r: r.query_id)
    assert got == sorted(events, key=lambda r: r.query_id)


@pytest.mark.parametrize("client", ["kafka-python"], indirect=True)
def test_compression_setting_validates(client, monkeypatch):
    assert Settings().emit_compression == "lz4"
    monkeypatch.setenv("PHASEGATE_EMIT_COMPRESSION", "zstd")
    assert Settings().emit_compression == "zstd"
    monkeypatch.setenv("PHASEGATE_EMIT_COMPRESSION", "brotli")
    with pytest.raises(ValidationError, match="emit_compression"):
        Settings()


@pytest.mark.parametrize("client", ["kafka-python"], indirect=True)
def test_missing_codec_library_is_refused_at_once(client, monkeypatch):
    from kafka import codec

    monkeypatch.setattr(codec, "has_zstd", lambda: False)
    with pytest.raises(ValueError, match="zstd compression needs the zstandard package"):
        Emitter(Settings(emit_compression="zstd"))


def test_a_misspelt_client_option_is_refused_at_once(client):
    with pytest.raises(ValueError, match="lingr"):
        Emitter(Settings(), **{"lingr_ms" if client == "kafka-python" else "lingr.ms": 5})


@pytest.mark.parametrize("client", ["kafka-python"], indirect=True)
def test_both_clients_send_a_key_to_the_same_partition(client, kafka_settings):
    pytest.importorskip("confluent_kafka")
    events = [result(i) for i in range(400)]
    where = {}
    for name in CLIENTS:
        prefix = f"{kafka_settings.topic_prefix}{name}."
        settings = kafka_settings.model_copy(update={"emit_client": name, "topic_prefix": prefix})
        ensure_topics(settings)
        with Emitter(settings) as emitter:
            assert all(emitter.emit(e) for e in events)
            assert emitter.flush(20)
        records = read_topic(settings, settings.topics.results)
        assert len(records) == len(events)
        where[name] = {(r.key, r.partition) for r in records}
    assert where["kafka-python"] == where["confluent-kafka"]
    assert len({p for _, p in where["kafka-python"]}) > 1


@pytest.mark.parametrize("client", ["kafka-python"], indirect=True)
def test_auto_picks_confluent_kafka_when_installed(client, monkeypatch):
    import importlib.util

    auto = Settings(emit_client="auto")
    installed = importlib.util.find_spec("confluent_kafka") is not None
    assert client_class(auto) is (ConfluentKafka if installed else KafkaPython)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert client_class(auto) is KafkaPython
    with pytest.raises(ValueError, match="confluent-kafka package"):
        client_class(Settings(emit_client="confluent-kafka"))
