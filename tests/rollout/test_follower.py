"""Following a topic from a thread (real broker): caught up means every event applied."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaProducer

from rollout.follower import Follower
from rollout.log import LogUnavailable, RolloutLog, current_state
from rollout.state import Rollouts, RolloutState
from schemas.codec import encode
from schemas.events import RolloutEvent
from schemas.settings import Settings


def write_log(settings: Settings, count: int, batch: bool = False, rollouts: int = 1) -> None:
    """``count`` weight changes, of rollout "kai" (or "kai", "kai-1", ... in turn); with
    ``batch`` all in one record batch."""
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=2000 if batch else 0,
        batch_size=4 * 1024 * 1024,
    )
    for i in range(1, count + 1):
        rollout = f"kai-{i % rollouts}" if i % rollouts else "kai"
        event = RolloutEvent(rollout=rollout, type="weight_set", weight=i % 101, reason=f"{i}")
        producer.send(settings.topics.rollout, key=rollout.encode(), value=encode(event))
        if not batch:
            producer.flush()
    producer.flush(10)
    producer.close()


class SlowFirstFetch:
    """A consumer whose first fetch is not back within the poll's timeout (a slow broker)."""

    def __init__(self, consumer: Any) -> None:
        self.consumer, self.slow = consumer, True

    def poll(self, timeout_ms: int = 0, **options: Any) -> dict:
        if self.slow:
            self.slow = False
            time.sleep(timeout_ms / 1000)
            return {}
        return self.consumer.poll(timeout_ms=timeout_ms, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.consumer, name)


class SlowFollower(Follower):
    def _connect(self) -> Any:
        return SlowFirstFetch(super()._connect())


def follow(settings: Settings, follower_class: type[Follower] = Follower) -> RolloutState:
    """The state of "kai" at the moment ``follower_class`` says it has caught up."""
    rollouts = Rollouts()
    topic = settings.topics.rollout
    with follower_class(settings, topic, RolloutEvent, rollouts.apply) as follower:
        assert follower.caught_up.wait(15), follower.error
        return rollouts.state("kai")


def test_a_slow_first_fetch_is_not_the_end_of_the_log(kafka_settings):
    write_log(kafka_settings, 200)
    assert len(follow(kafka_settings, SlowFollower).history) == 200


def test_a_last_batch_larger_than_one_poll_is_read_whole(kafka_settings):
    # Tansu's end offset is the last batch's first offset + 1 = 1 here: a rule that looks
    # at positions only would stop after the first 500 records of a poll
    write_log(kafka_settings, 1200, batch=True)
    state = follow(kafka_settings)
    assert (len(state.history), state.history[-1].reason) == (1200, "1200")


def test_an_empty_log_is_caught_up_at_once(kafka_settings):
    log = RolloutLog(kafka_settings)
    with log.follower:
        assert log.follower.caught_up.wait(5)
        assert log.rollouts() == [] and log.follower.error is None


def test_no_broker_sets_the_error_and_never_catches_up(no_broker_settings):
    settings = no_broker_settings
    log = RolloutLog(settings, retry_s=0.2)
    with log.follower:
        deadline = time.monotonic() + 15
        while log.follower.error is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the first attempt gives up after its bootstrap timeout
        assert f"cannot read phasegate.rollout at {settings.bootstrap_servers}" in (
            log.follower.error or ""
        )
        assert not log.follower.caught_up.is_set()


def test_a_command_refuses_to_act_on_a_state_it_could_not_read(no_broker_settings):
    settings = no_broker_settings
    with pytest.raises(LogUnavailable) as refused:
        current_state(settings, "kai", timeout_s=1)
    assert str(refused.value).startswith(
        f"cannot establish the state of kai within 1 s: cannot read phasegate.rollout at "
        f"{settings.bootstrap_servers}"
    )
    assert str(refused.value).endswith("; nothing was done")


def test_the_current_state_is_the_whole_log(kafka_settings):
    write_log(kafka_settings, 30)
    state = current_state(kafka_settings, "kai")
    assert (len(state.history), state.weight) == (30, 30)
