"""Following the rollout log and the alerts, and appending to the rollout log (real broker)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from kafka import KafkaProducer

from dashboard.feeds import AlertLog
from phasegate.testing.topics import read_values
from rollout.log import RolloutLog
from rollout.writer import NotWritten, RolloutWriter
from schemas.base import now
from schemas.codec import encode
from schemas.events import Alert, AlertWindow, RolloutEvent
from schemas.settings import Settings


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def alert(rollout: str = "kai", kind: str = "emergency_rollback") -> Alert:
    end = now()
    return Alert(
        alert_id=uuid.uuid4(),
        rollout=rollout,
        system="production",
        severity="critical",
        kind=kind,
        metric="success_rate",
        observed=0.84,
        threshold=0.9,
        window=AlertWindow(start=end - timedelta(seconds=60), end=end),
        samples=300,
    )


def test_writer_appends_and_the_log_follows(kafka_settings: Settings) -> None:
    log = RolloutLog(kafka_settings)
    log.follower.start()
    writer = RolloutWriter(kafka_settings)
    try:
        assert log.follower.caught_up.wait(15)
        assert log.state("kai").weight == 0
        writer.append(RolloutEvent(rollout="kai", type="weight_set", weight=50, actor="t"))
        writer.append(RolloutEvent(rollout="kai", type="phase_started", weight=75, phase=2))
        writer.append(RolloutEvent(rollout="other", type="weight_set", weight=10))
        assert wait_until(lambda: log.state("kai").weight == 75)
        assert log.state("kai").phase == 2
        assert wait_until(lambda: log.rollouts() == ["kai", "other"])
        values = read_values(kafka_settings.bootstrap_servers, kafka_settings.topics.rollout, 3)
        assert len(values) == 3
    finally:
        writer.close()
        log.follower.close()


def test_unreadable_messages_are_skipped_and_alerts_deduplicated(kafka_settings: Settings) -> None:
    topics = kafka_settings.topics
    first = alert()
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    for value in (b"not json", encode(first), encode(first), encode(alert("other", "gate_failed"))):
        producer.send(topics.alerts, value)
    producer.send(topics.rollout, b'{"schema": "phasegate.rollout/1"}')
    producer.send(topics.rollout, encode(RolloutEvent(rollout="kai", type="weight_set", weight=50)))
    producer.flush(10)
    producer.close()
    alerts, log = AlertLog(kafka_settings), RolloutLog(kafka_settings)
    alerts.follower.start()
    log.follower.start()
    try:
        assert wait_until(lambda: len(alerts.recent("other")) == 1)
        assert [a.alert_id for a in alerts.recent("kai")] == [first.alert_id]
        assert alerts.counts == {("kai", "emergency_rollback"): 1, ("other", "gate_failed"): 1}
        assert wait_until(lambda: log.state("kai").weight == 50)
    finally:
        alerts.follower.close()
        log.follower.close()


def test_no_broker(no_broker_settings) -> None:
    settings = no_broker_settings
    log = RolloutLog(settings)
    log.follower.retry_s = 0.2
    log.follower.start()
    writer = RolloutWriter(settings, timeout_s=1.0)
    try:
        assert wait_until(lambda: log.follower.error is not None)
        assert (
            f"cannot read phasegate.rollout at {settings.bootstrap_servers}" in log.follower.error
        )
        assert not log.follower.caught_up.is_set()
        with pytest.raises(NotWritten, match="has not acknowledged the event within 1 s"):
            writer.append(RolloutEvent(rollout="kai", type="weight_set", weight=50))
    finally:
        writer.close(0.1)
        log.follower.close()
