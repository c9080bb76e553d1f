"""The Faust worker: the application around the protocol of ``streams.protocol``.

Faust runs the app: the producer, the timers, the web views and stage 2's agent over the
low-rate partials topic. Stage 1 reads results and feedback by whole fetched batches
(:class:`streams.fetch.BatchConsumer`, aiokafka, in the worker's consumer group), a task
of the app. The protocol objects decide what happens to each message: stage 1
(:class:`Aggregation`: aggregate, flush, commit, dead letters, rebalance) and stage 2
(:class:`Judgement`: merge partials, judge, send alerts and rollbacks).
:class:`FaustOutbox` gives them Faust's topics and the batch consumer's commit. One
asyncio follower of the whole rollout log (``rollout.async_follower``, on aiokafka like
Faust itself) keeps every rollout's state current; it starts and stops with
the app, and no partial is judged before it has read the log to the end it saw at start.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import faust
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from rollout.async_follower import AsyncFollower
from rollout.state import Rollouts, RolloutState
from schemas.codec import encode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.internal import DeadLetter, Partial
from schemas.plan import load_plan
from schemas.settings import Settings
from streams.clock import Clock, wall_clock
from streams.credentials import broker_credentials
from streams.fetch import BatchConsumer
from streams.looplag import LoopLag
from streams.metrics import CONTENT_TYPE
from streams.protocol import Aggregation, Counters, Judgement
from streams.scrape import metrics_text, status_text
from streams.stage1 import Source, Stage1
from streams.stage2 import Stage2
from streams.status import status_json
from streams.transport import Transport
from streams.triggers import RELEASE_SECONDS


def create_app(settings: Settings, clock: Clock = wall_clock, **faust_options: Any) -> faust.App:
    topics = settings.topics
    options: dict[str, Any] = {
        "broker": settings.kafka_url,
        "broker_credentials": broker_credentials(settings),
        "store": "memory://",
        "datadir": str(settings.state_dir / "worker"),
        "web_bind": settings.worker_host,
        "web_host": settings.worker_host,
        "web_port": settings.worker_port,
        "broker_session_timeout": 6,
        "broker_heartbeat_interval": 1,
        "consumer_auto_offset_reset": "earliest",
        "topic_allow_declare": False,
        "producer_acks": -1,
        # Unflushed events are never acked: a rebalance or a stop must not wait for them
        # (their next owner replays them from the commit; stage 2 replaces the run).
        "stream_wait_empty": False,
    }
    options.update(faust_options)
    (settings.state_dir / "worker").mkdir(parents=True, exist_ok=True)
    # Faust's own group reads only the partials (never committed); stage 1's group keeps
    # the worker's name and its committed offsets.
    app = faust.App(f"{topics.prefix}worker-stage2", **options)
    app.transport = Transport(app.conf.broker_consumer, app)  # a stop in seconds
    auth = credentials_to_aiokafka_auth(options["broker_credentials"])

    stage1 = Stage1(settings.window_seconds, settings.lateness_seconds, settings.max_future_seconds)
    plan = load_plan(settings.plan)
    rollouts = Rollouts()
    rollout_log = AsyncFollower(
        settings,
        topics.rollout,
        RolloutEvent,
        rollouts.apply,
        name=f"{topics.prefix}worker-rollout-log",
        client_options=auth,
    )
    loop_lag = LoopLag()

    def state_of(rollout: str) -> RolloutState | None:
        return rollouts.state(rollout) if rollout_log.caught_up.is_set() else None

    stage2 = Stage2(
        settings.window_seconds, settings.retention_seconds, plan, state_of=state_of, clock=clock
    )
    counters = Counters()

    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    # Stage 2 never commits the partials topic: a restarted worker folds it again from the
    # start (partials are replay-safe), which rebuilds every view it owned.
    partials_topic = app.topic(topics.partials, acks=False, **raw)
    fetch = BatchConsumer(
        (topics.results, topics.feedback),
        f"{topics.prefix}worker",
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{topics.prefix}worker",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=100,
        **auth,
    )
    outbox = FaustOutbox(
        fetch.commit,
        partials_topic,
        app.topic(topics.alerts, **raw),
        app.topic(topics.rollout, **raw),
        app.topic(topics.dlq, **raw),
    )
    models = {topics.results: Result, topics.feedback: Feedback}
    aggregation = Aggregation(stage1, models, outbox, counters, clock)
    judgement = Judgement(stage2, outbox, counters, rollout_log.caught_up)

    @app.task
    async def aggregate() -> None:
        await fetch.run(aggregation)  # cancelled when the app stops; it leaves the group

    @app.timer(interval=settings.flush_seconds, name="flush")
    async def flush() -> None:
        await aggregation.flush()

    @app.task
    async def follow_rollout_log() -> None:
        await rollout_log.run()  # cancelled when the app stops; it closes its consumer

    @app.task
    async def watch_loop_lag() -> None:
        await loop_lag.run()

    @app.agent(partials_topic, name="merge")
    async def merge(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await judgement.merge(event.message)

    @app.timer(interval=RELEASE_SECONDS, name="release")
    async def release() -> None:
        await judgement.release()

    @app.timer(interval=5.0, name="advance")
    async def advance() -> None:
        await judgement.advance()

    @app.timer(interval=30.0, name="expire")
    async def expire() -> None:
        stage2.expire(clock())

    roles = (settings.rolling_seconds, settings.baseline_system, settings.candidate_system)

    def worker_sections() -> dict[str, Any]:
        """The worker's own sections of /status (and of /metrics)."""
        faust_assigned = app.consumer.assignment() if app.consumer else set()
        assigned = sorted(fetch.assignment() | faust_assigned)
        return {
            "counters": counters.json(),
            "assignment": [f"{tp.topic}:{tp.partition}" for tp in assigned],
            "rollout_log": {
                "caught_up": rollout_log.caught_up.is_set(),
                "error": rollout_log.error,
            },
            "loop_lag_ms": loop_lag.json(),
        }

    @app.page("/status")
    async def status(web: Any, request: Any) -> Any:
        rollout = request.query.get("rollout")
        if rollout is None:  # every rollout: built one at a time (streams.scrape)
            text = await status_text(stage2, roles, worker_sections())
            return web.text(text, content_type="application/json")
        body, code = status_json(stage2, rollout, roles, worker_sections())
        return web.json(body, status=code)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        text = await metrics_text(stage2, roles, worker_sections())
        return web.text(text, content_type=CONTENT_TYPE)

    return app


class FaustOutbox:
    """The protocol's :class:`~streams.protocol.Outbox` on Faust's topics; ``commit``: stage
    1's consumer's."""

    def __init__(
        self,
        commit: Callable[[Mapping[Source, int]], Awaitable[Collection[Source]]],
        partials: Any,
        alerts: Any,
        rollout: Any,
        dlq: Any,
    ):
        self.commit, self.partials_topic = commit, partials
        self.alerts_topic, self.rollout_topic, self.dlq_topic = alerts, rollout, dlq

    async def partials(self, partials: Sequence[Partial]) -> None:
        sent = [
            await self.partials_topic.send(key=p.rollout.encode(), value=encode(p))
            for p in partials
        ]
        for future in sent:
            await future  # the broker has the partial

    async def alert(self, alert: Alert) -> None:
        await self.alerts_topic.send(key=alert.rollout.encode(), value=encode(alert))

    async def rollout(self, event: RolloutEvent) -> None:
        await self.rollout_topic.send(key=event.rollout.encode(), value=encode(event))

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self.dlq_topic.send(value=encode(letter))


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGINT or SIGTERM."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    gc.collect()
    gc.freeze()  # start-up's objects (~90,000): no full pass walks them again (design.md)
    worker.execute_from_commandline()
