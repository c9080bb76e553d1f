"""The two baselines of bench_streams.py, each a Faust app run as its own process.

``bare``: an agent that only decodes each event (the ceiling of any Faust worker).
``naive``: the same metrics kept the obvious way, Faust windowed tables updated per event.
Both serve ``/count`` (events processed) on the worker port.
"""

from __future__ import annotations

import sys

import faust

from schemas.codec import decode
from schemas.events import Result
from schemas.settings import Settings


def build(variant: str, settings: Settings) -> faust.App:
    (settings.state_dir / variant).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}{variant}",
        broker=settings.kafka_url,
        store="memory://",
        web_bind="127.0.0.1",
        web_port=settings.worker_port,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        topic_partitions=4,
        datadir=str(settings.state_dir / variant),
    )
    topic = app.topic(settings.topics.results, key_serializer="raw", value_serializer="raw")
    seen = {"count": 0}

    if variant == "bare":

        @app.agent(topic, name="bare")
        async def bare(stream: faust.StreamT) -> None:
            async for value in stream:
                decode(value, Result)
                seen["count"] += 1

    else:
        window = settings.window_seconds

        def table(name: str, default: type) -> faust.Table:
            return app.Table(name, default=default, partitions=4).tumbling(window, expires=3600)

        count, successes = table("count", int), table("successes", int)
        confidence, latency = table("confidence", float), table("latency", float)
        errors = table("errors", int)

        @app.agent(topic, name="naive")
        async def naive(stream: faust.StreamT) -> None:
            # No group_by (it would add a repartition topic): this favours the baseline.
            async for value in stream:
                r = decode(value, Result)
                key = f"{r.rollout}|{r.system}"
                count[key] += 1
                successes[key] += r.success
                confidence[key] += r.confidence
                latency[key] += r.latency_ms
                if r.error is not None:
                    errors[f"{key}|{r.error.type}"] += 1
                seen["count"] += 1

    @app.page("/count")
    async def count_page(web, request):
        return web.json(seen)

    return app


if __name__ == "__main__":
    application = build(sys.argv[1], Settings())
    faust.Worker(application, loglevel="warning", quiet=True).execute_from_commandline()
