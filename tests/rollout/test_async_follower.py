"""Following a topic from asyncio (real broker): the same rule, a loop that never waits."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from aiokafka import AIOKafkaConsumer

from phasegate.stack import free_port
from rollout.async_follower import AsyncFollower
from rollout.state import Rollouts
from schemas.events import RolloutEvent
from schemas.settings import Settings
from streams.looplag import LoopLag
from tests.rollout.test_follower import write_log

LAG_MS = 100


async def follow(settings: Settings, seconds: float) -> tuple[AsyncFollower, int, LoopLag]:
    """Follow the rollout log for up to ``seconds`` (until caught up) while timing the loop;
    then stop, and check that nothing the follower started is left running. Returns the
    follower, the events applied when it said it had caught up, and the loop's lag.

    The garbage collector is off meanwhile: its pauses (tens of ms over this test
    process's heap) are the process's, not the follower's; the worker test counts them.
    """
    rollouts, lag = Rollouts(), LoopLag()
    follower = AsyncFollower(
        settings, settings.topics.rollout, RolloutEvent, rollouts.apply, retry_s=0.2
    )
    tasks = [asyncio.create_task(follower.run()), asyncio.create_task(lag.run())]
    gc.disable()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower.caught_up.wait(), seconds)
        applied = sum(len(rollouts.state(r).history) for r in rollouts.rollouts())
    finally:
        gc.enable()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}  # the consumer is closed
    return follower, applied, lag


def test_caught_up_means_the_whole_log_read(kafka_settings):
    write_log(kafka_settings, 8000, batch=True, rollouts=80)
    follower, applied, lag = asyncio.run(follow(kafka_settings, 15))
    assert follower.caught_up.is_set() and follower.error is None
    assert applied == 8000
    assert lag.held_max_ms < LAG_MS  # read in slices: the loop ran between them


def test_no_broker_keeps_the_error_and_the_loop_free(tmp_path):
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", state_dir=tmp_path)
    follower, _, lag = asyncio.run(follow(settings, 3))
    assert not follower.caught_up.is_set()
    assert f"cannot read phasegate.rollout at {settings.bootstrap_servers}" in (
        follower.error or ""
    )
    assert lag.held_max_ms < LAG_MS


def test_a_cancel_as_the_consumer_closes_still_ends_the_follower(no_broker_settings, monkeypatch):
    """The worker stops the follower by cancelling it: a cancel that arrives as the
    consumer finishes closing must end it too, not be lost (it went on retrying)."""
    close = AIOKafkaConsumer.stop

    async def scenario() -> bool:
        settings = no_broker_settings
        follower = AsyncFollower(settings, settings.topics.rollout, RolloutEvent, print)
        task = asyncio.create_task(follower.run())

        async def close_then_cancel(consumer: AIOKafkaConsumer) -> None:
            await close(consumer)
            asyncio.get_running_loop().call_soon(task.cancel)  # with the close's own wake-up

        monkeypatch.setattr(AIOKafkaConsumer, "stop", close_then_cancel)
        await asyncio.wait([task], timeout=5)
        ended = task.cancelled()
        monkeypatch.undo()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ended

    assert asyncio.run(scenario())
