"""The Faust worker: stage 1 (partials per partition) and stage 2 (merge, alerts).

Stage 1 reads results and feedback without acking them; every ``flush_seconds`` it sends
the partials of each partition, waits for the broker to have them, then acks the events
and commits. A crash before that commit replays the run, and stage 2 replaces it
(see ``streams.windows``): no per-event changelog writes, no double counting. A send the
broker refuses (it is down or restarting) is retried with backoff, not a crash.

Stage 2 keeps its views in memory and rebuilds them after a restart by reading the
partials topic from the start. It judges the candidate with the plan's rollback triggers
(``streams.triggers``): alerts go to the alerts topic, rollbacks to the rollout log. One
asyncio follower of the whole rollout log (``rollout.async_follower``, on aiokafka like
Faust itself) keeps every rollout's state current; it starts and stops with the app, and
no partial is judged before it has read the log to the end it saw at start. Alert and
rollback ids derive from the incident, so what a replay raises again carries the same
ids.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP

from rollout.async_follower import AsyncFollower
from rollout.state import Rollouts, RolloutState
from schemas.backoff import Backoff
from schemas.codec import DecodeError, decode, encode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.fastcodec import fast_decode
from schemas.internal import DeadLetter, Partial
from schemas.plan import load_plan
from schemas.settings import Settings
from streams.clock import Clock, wall_clock
from streams.credentials import broker_credentials
from streams.looplag import LoopLag
from streams.metrics import CONTENT_TYPE, prometheus_text
from streams.retry import until_sent
from streams.stage1 import Stage1
from streams.stage2 import Stage2, control_json
from streams.status import view_json

log = logging.getLogger("phasegate.streams")
FLUSH_RETRY_S = (0.5, 10.0)  # first and longest wait before sending partials again


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
    app = faust.App(f"{topics.prefix}worker", **options)

    stage1 = Stage1(settings.window_seconds, settings.lateness_seconds, settings.max_future_seconds)
    plan = load_plan(settings.plan)
    rollouts = Rollouts()
    rollout_log = AsyncFollower(
        settings,
        topics.rollout,
        RolloutEvent,
        rollouts.apply,
        name=f"{topics.prefix}worker-rollout-log",
        client_options=credentials_to_aiokafka_auth(options["broker_credentials"]),
    )
    loop_lag = LoopLag()

    def state_of(rollout: str) -> RolloutState | None:
        return rollouts.state(rollout) if rollout_log.caught_up.is_set() else None

    stage2 = Stage2(settings.window_seconds, settings.retention_seconds, plan, state_of=state_of)
    counters = {
        "results": 0,
        "feedback": 0,
        "dead_letters": 0,
        "partials": 0,
        "alerts": 0,
        "rollbacks": 0,
    }
    app.phasegate = {"stage1": stage1, "stage2": stage2, "counters": counters}  # type: ignore[attr-defined]

    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(topics.results, topics.feedback, **raw)
    # Stage 2 never commits the partials topic: a restarted worker folds it again from the
    # start (partials are replay-safe), which rebuilds every view it owned.
    partials_topic = app.topic(topics.partials, acks=False, **raw)
    alerts_topic = app.topic(topics.alerts, **raw)
    rollout_topic = app.topic(topics.rollout, **raw)
    dlq_topic = app.topic(topics.dlq, **raw)
    models = {topics.results: Result, topics.feedback: Feedback}

    async def dead_letter(message: Any, reason: str) -> None:
        counters["dead_letters"] += 1
        letter = DeadLetter(
            component="streams",
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            reason=reason,
            original=message.value or b"",
        )
        await dlq_topic.send(value=encode(letter))

    @app.agent(source, name="aggregate")
    async def aggregate(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            m = event.message
            acc = stage1.accumulator(m.topic, m.partition, m.offset)
            try:
                model = fast_decode(m.value, models[m.topic])
            except DecodeError as exc:
                await dead_letter(m, exc.reason)
                acc.skip(m.offset)
            else:
                refused = acc.add(m.offset, model, clock())
                if refused:
                    await dead_letter(m, refused)
                else:
                    counters["results" if isinstance(model, Result) else "feedback"] += 1
            stage1.pending[(m.topic, m.partition)].append(event)

    @app.timer(interval=settings.flush_seconds, name="flush")
    async def flush_timer() -> None:
        await flush()

    async def flush() -> None:
        """Send every pending run's partials; once the broker has them, ack and commit."""
        runs = stage1.drain()
        if not runs:
            return
        # resending a run is harmless: stage 2 keeps one copy of each run
        counters["partials"] += await until_sent(
            lambda: send_partials(runs), Backoff(*FLUSH_RETRY_S), log, "partials"
        )
        for source, _partials, events, next_offset in runs:
            for event in events:
                event.ack()
            acc = stage1.accumulators.get(source)
            if acc is not None:
                acc.committed(next_offset)
        await app.consumer.commit()

    async def send_partials(runs: list[Any]) -> int:
        futures = []
        for _source, partials, _events, _next in runs:
            for p in partials:
                futures.append(await partials_topic.send(key=p.rollout.encode(), value=encode(p)))
        for fut in futures:
            await fut  # the broker has the partial
        return len(futures)

    @app.task
    async def follow_rollout_log() -> None:
        await rollout_log.run()  # cancelled when the app stops; it closes its consumer

    @app.task
    async def watch_loop_lag() -> None:
        await loop_lag.run()

    @app.agent(partials_topic, name="merge")
    async def merge(stream: faust.StreamT) -> None:
        async for event in stream.events():
            # a replayed partial is judged against the current rollout log, never a guess
            await rollout_log.caught_up.wait()
            try:
                partial = decode(event.message.value, Partial)
            except DecodeError as exc:
                await dead_letter(event.message, exc.reason)
                continue
            for out in stage2.apply(partial):
                if isinstance(out, Alert):
                    counters["alerts"] += 1
                    log.warning(
                        "alert %s %s/%s %s=%.4g (limit %.4g) over %d events",
                        out.kind,
                        out.rollout,
                        out.system,
                        out.metric,
                        out.observed,
                        out.threshold,
                        out.samples,
                    )
                    await alerts_topic.send(key=out.rollout.encode(), value=encode(out))
                else:
                    counters["rollbacks"] += 1
                    log.warning("rollout %s: %s to weight %s", out.rollout, out.type, out.weight)
                    await rollout_topic.send(key=out.rollout.encode(), value=encode(out))

    @app.timer(interval=5.0, name="advance")
    async def advance() -> None:
        for rollout in list(stage2.views):
            event = stage2.advance(rollout)
            if event is not None:
                log.warning("rollout %s: auto-advance to phase %s", rollout, event.phase)
                await rollout_topic.send(key=rollout.encode(), value=encode(event))

    @app.timer(interval=30.0, name="expire")
    async def expire() -> None:
        stage2.expire(clock())

    roles = (settings.rolling_seconds, settings.baseline_system, settings.candidate_system)

    def snapshot() -> dict[str, Any]:
        """The live picture that /status serves and /metrics exports."""
        assigned = sorted(app.consumer.assignment()) if app.consumer else []
        return {
            "counters": counters,
            "assignment": [f"{tp.topic}:{tp.partition}" for tp in assigned],
            "rollouts": {r: view_json(v, *roles) for r, v in sorted(stage2.views.items())},
            "control": {r: control_json(stage2, r) for r in sorted(stage2.views)},
            "rollout_log": {
                "caught_up": rollout_log.caught_up.is_set(),
                "error": rollout_log.error,
            },
            "loop_lag_ms": loop_lag.json(),
        }

    @app.page("/status")
    async def status(web: Any, request: Any) -> Any:
        return web.json(snapshot())

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.text(prometheus_text(snapshot()), content_type=CONTENT_TYPE)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        try:
            await flush()  # hand over what was read so far, so the next owner replays less
        except Exception:
            log.warning("could not flush before a rebalance; the next owner replays it")
        stage1.revoke({(tp.topic, tp.partition) for tp in revoked})

    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGINT or SIGTERM."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
