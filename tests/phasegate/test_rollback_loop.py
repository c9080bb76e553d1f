"""The rollback loop, real all the way: simulator -> Router/Emitter -> worker -> alert ->
rollout log -> Router at 0%, and the webhook; an A/A run of the same length does nothing."""

from __future__ import annotations

import threading
import time

import pytest

from phasegate.notify import Notifier, Webhook, run
from phasegate.rollout_cli import read_state
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import read_values
from phasegate.testing.webhook import Receiver
from producers import live
from producers.router import Router
from schemas.codec import decode
from schemas.events import Alert, RolloutEvent
from schemas.plan import load_plan
from streams.triggers import WORKER

pytestmark = pytest.mark.timeout(240)
ROLLOUT = "kai"


@pytest.fixture
def loop(kafka_settings, tmp_path):
    """A worker, a webhook receiver with its notifier, and phase 1 started at 50%."""
    settings = kafka_settings.model_copy(
        update={"window_seconds": 1, "lateness_seconds": 1, "flush_seconds": 0.5}
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    receiver, stop = Receiver(), threading.Event()
    notifier = Notifier(Webhook(receiver.url, timeout_s=2), load_plan(), ROLLOUT)
    thread = threading.Thread(target=run, args=(settings, notifier, stop), daemon=True)
    thread.start()
    from rollout.writer import RolloutWriter

    writer = RolloutWriter(settings)
    writer.append(RolloutEvent(rollout=ROLLOUT, type="phase_started", weight=50, phase=1))
    writer.close()
    worker.wait_assigned()
    yield settings, worker, receiver
    stop.set()
    thread.join(10)
    receiver.close()
    worker.stop()


class Watch:
    """The real Router, polled: when did it stop sending anything to the candidate?"""

    def __init__(self, settings) -> None:
        self.router = Router(settings, ROLLOUT)
        self.zero_at: float | None = None
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.zero_at is None and self.router.wait_ready(0) and self.router.weight == 0:
                self.zero_at = time.time()
            time.sleep(0.01)

    def close(self) -> None:
        self.stop.set()
        self.router.close()


def alerts(settings, timeout_s: float = 3.0) -> list[Alert]:
    return [
        decode(v, Alert)
        for v in read_values(settings.bootstrap_servers, settings.topics.alerts, 100, timeout_s)
    ]


def test_degrading_candidate_is_rolled_back_once_and_the_router_follows(loop):
    settings, worker, receiver = loop
    watch = Watch(settings)
    try:
        assert watch.router.wait_ready(10) and watch.router.weight == 50
        # 10 s at 500/s; from the middle on the candidate succeeds 85% of the time
        summary = live.run(settings, "degrade", events=5000, rate=500, rollout=ROLLOUT)
        worker.wait(lambda s: s["counters"]["rollbacks"] >= 1, timeout=30)
        time.sleep(2)  # room for a second alert, which must not come
        emergencies = [a for a in alerts(settings) if a.kind == "emergency_rollback"]
        assert len(emergencies) == 1
        (alert,) = emergencies
        assert (alert.system, alert.metric) == ("production", "success_rate")
        assert alert.observed < 0.9
        assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)
        why = {(c.dimension, c.value) for c in alert.contributors}  # degrade: de timeouts
        assert {("segment", "de"), ("error_type", "timeout")} <= why
        assert ("segment", "en") not in why

        state = read_state(settings, ROLLOUT)
        assert (state.weight, state.phase) == (0, 0) and state.last.actor == WORKER
        assert watch.zero_at is not None
        assert watch.zero_at - alert.ts.timestamp() <= 2.0
        assert not any(watch.router.choose(f"user-{k}") == "production" for k in range(1000))
        assert summary.weight == 0  # the simulated application's own Router followed too

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(receiver.bodies) < 3:
            time.sleep(0.1)
        kinds = [b.get("kind") for b in receiver.bodies]
        (body,) = [b for b in receiver.bodies if b.get("alert_id") == str(alert.alert_id)]
        assert "why: " in body["text"] and "de: " in body["text"]
        assert kinds.count("emergency_rollback") == 1
        assert "phase_started" in kinds and "rollback" in kinds  # the announcements
    finally:
        watch.close()


def test_an_aa_run_of_the_same_length_raises_no_rollback(loop):
    settings, worker, _ = loop
    summary = live.run(settings, "aa", events=5000, rate=500, rollout=ROLLOUT)
    worker.wait(lambda s: s["counters"]["results"] >= sum(summary.per_system.values()))
    time.sleep(2)
    assert [a for a in alerts(settings, 1.0) if a.action is not None] == []
    assert worker.status()["counters"]["rollbacks"] == 0
    assert read_state(settings, ROLLOUT).weight == 50
