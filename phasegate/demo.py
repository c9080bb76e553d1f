"""``phasegate demo``: the whole path on the local default, with a candidate that degrades.

A private Tansu broker and a fresh chdb store under ``state_dir/demo``; the stream worker
as a child process; the sink in a thread of this process (chdb allows one process per
store, and the report reads the same store); simulated traffic at 50% through the real
Router and Emitter, the candidate's success dropping from about 98% to 85% halfway.
The worker's emergency rule rolls the candidate back to weight 0 and the Router follows.
It prints the alerts and rollout events as they arrive, then the worker's live windows
and the ClickHouse report, and stops everything it started.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from dashboard.terminal import render
from phasegate.stack import ManagedProcess, ensure_topics, free_port
from phasegate.stack.broker import broker_process
from producers import live
from rollout.state import fold
from schemas.alert_text import sample_name, why
from schemas.codec import DecodeError, decode
from schemas.events import Alert, RolloutEvent
from schemas.settings import Settings
from sinks.consumer import Sink
from sinks.migrations import migrate
from sinks.report import as_table, system_report
from sinks.store import open_store

ROLLOUT = "kai-response"
console = Console(soft_wrap=True)


def demo_settings(base: Settings, duration_s: float = 20.0) -> Settings:
    """Private ports and folders under ``state_dir/demo``; about 6 windows per run."""
    folder = base.state_dir / "demo"
    window = max(1, min(10, round(duration_s / 6)))
    return base.model_copy(
        update={
            "bootstrap_servers": f"127.0.0.1:{free_port()}",
            "broker_storage": "memory://tansu/",
            "topic_prefix": f"demo-{uuid.uuid4().hex[:6]}.",
            "clickhouse_url": None,
            "store_path": folder / "store",
            "state_dir": folder,
            "worker_port": free_port(),
            "window_seconds": window,
            "lateness_seconds": window,
            "flush_seconds": 0.5,
        }
    )


def status_of(settings: Settings) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.worker_port}/status"
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)


def worker_process(settings: Settings) -> ManagedProcess:
    """``phasegate worker`` as a managed child, ready once it owns partitions."""

    def probe() -> None:
        if not status_of(settings).get("assignment"):
            raise RuntimeError("no partitions assigned yet")

    return ManagedProcess(
        name="worker",
        argv=[sys.executable, "-m", "phasegate.cli", "worker", "--loglevel", "warning"],
        folder=settings.state_dir / "worker-process",
        host="127.0.0.1",
        ports=[settings.worker_port],
        probe=probe,
        env=settings.to_env(),
    )


def show_alert(alert: Alert) -> str:
    return (
        f"[bold red]ALERT[/] {alert.kind} {alert.rollout}/{alert.system}: "
        f"{alert.metric} {alert.observed:.3f} (threshold {alert.threshold:.2f}) "
        f"over {alert.samples} {sample_name(alert)} "
        f"({alert.window.start:%H:%M:%S}-{alert.window.end:%H:%M:%S})"
        + (f"\n  why: {escape(why(alert))}" if alert.contributors else "")
    )


def show_rollout(event: RolloutEvent) -> str:
    phase = "" if event.phase is None else f", phase {event.phase}"
    reason = f": {event.reason}" if event.reason else ""
    return (
        f"[bold yellow]ROLLOUT[/] {event.type} {event.rollout}: weight {event.weight}{phase} "
        f"by {event.actor}{reason}"
    )


@dataclass
class Watch:
    """Follows the alerts and rollout topics in a thread and prints what arrives."""

    settings: Settings
    alerts: list[Alert] = field(default_factory=list)
    rollout: list[RolloutEvent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        topics = self.settings.topics
        seen = {topics.alerts: (Alert, self.alerts, show_alert)}
        seen[topics.rollout] = (RolloutEvent, self.rollout, show_rollout)
        consumer = KafkaConsumer(
            *seen,
            bootstrap_servers=self.settings.bootstrap_servers,
            auto_offset_reset="earliest",
            consumer_timeout_ms=200,
            **self.settings.kafka_options(),
        )
        try:
            while not self.stop.is_set():
                for message in consumer:
                    model, into, show = seen[message.topic]
                    try:
                        event = decode(message.value, model)
                    except DecodeError:
                        continue
                    into.append(event)
                    console.print(show(event))
        finally:
            consumer.close()


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def run(base: Settings, events: int = 12_000, rate: float = 600.0) -> int:
    """Run the demo; 0 when the alert fired, the weight went to 0 and every event is stored."""
    settings = demo_settings(base, events / rate)
    shutil.rmtree(settings.store_path, ignore_errors=True)
    console.rule("[bold]phasegate demo")
    console.print(f"state and logs: {settings.state_dir}")
    broker, worker = broker_process(settings), worker_process(settings)
    stop_sink = threading.Event()
    watch = Watch(settings)
    threads: list[threading.Thread] = []
    try:
        broker.start(timeout=30)
        ensure_topics(settings)
        console.print(f"broker: Tansu at {settings.bootstrap_servers}")
        worker.start(timeout=90)
        console.print(f"worker: /status at http://127.0.0.1:{settings.worker_port}/status")
        store = open_store(settings)
        migrate(store, settings.database)
        sink = Sink(settings, store, batch_seconds=0.5)
        sink.start()
        threads = [
            threading.Thread(target=sink.run, args=(stop_sink,), daemon=True),
            threading.Thread(target=watch.run, daemon=True),
        ]
        for t in threads:
            t.start()
        console.print(f"sink: into chdb at {settings.store_path}")
        console.print(
            f"traffic: {events:,} generations at {rate:,.0f}/s, weight 50%, "
            "the candidate degrades halfway"
        )
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("simulating", total=1.0)
            summary = live.run(
                settings,
                "degrade",
                events=events,
                rate=rate,
                rollout=ROLLOUT,
                set_weight=50,
                on_progress=lambda p, _: bar.update(task, completed=p),
            )
        sent = sum(summary.per_system.values())
        console.print(f"sent {sent:,} results and {summary.feedback:,} feedback events")

        def counted() -> int:
            systems = status_of(settings)["rollouts"].get(ROLLOUT, {}).get("systems", {})
            return sum(w["count"] for windows in systems.values() for w in windows)

        wait_for(lambda: counted() >= sent, 30)
        wait_for(lambda: fold(watch.rollout, ROLLOUT).weight == 0, 15)
        wait_for(lambda: sum(sink.counters.rows.values()) >= sent + summary.feedback, 30)
        stop_sink.set()
        for t in threads:
            t.join(10)
        sink.close()
        console.rule("the stream worker's view (phasegate watch)")
        console.print(render(status_of(settings), ROLLOUT))
        reports = system_report(store, settings.database, ROLLOUT)
        console.print(as_table(reports, title="ClickHouse report (phasegate report)"))
        stored = sum(r.events for r in reports)
        store.close()
        weight = fold(watch.rollout, ROLLOUT).weight
        ok = bool(watch.alerts) and weight == 0 and stored == sent
        verdict = "[green]demo passed" if ok else "[red]demo did not pass"
        console.print(
            f"{verdict}: {len(watch.alerts)} alert(s); the rollout log ends at weight "
            f"{weight}% (the Router was at {summary.weight}% when the traffic ended); "
            f"{stored:,} of {sent:,} results stored"
        )
        return 0 if ok else 1
    finally:
        watch.stop.set()
        stop_sink.set()
        worker.stop()
        broker.stop()
