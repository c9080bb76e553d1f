"""The worker and its rollout-log follower (real worker processes).

The event loop never waits on Kafka: its largest lag (``/status`` ``loop_lag_ms``)
while it reads a long rollout log, while a new rollout appears and while the broker is
unreachable (a broker of its own). No partial is judged before the log is read. Told to
stop (SIGTERM) while its broker is down, the worker stops within seconds (before, Faust
waited 60 s for its consumer thread: ``streams.transport``); nothing is committed on
the way out, so what stage 1 read but could not send is read again by the next worker.

The assertion is on ``held_max``, the lag without the time the machine had no CPU free
for the worker (other processes' load is not the worker holding its loop); a blocking
Kafka call (the former Router per rollout: 194 ms here) counts in full.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import pytest
from kafka.admin import NewTopic

from dashboard.worker_client import fetch_status
from phasegate.stack import ensure_topics
from phasegate.stack.broker import admin_client
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import private_broker
from rollout.writer import RolloutWriter
from schemas.events import RolloutEvent
from schemas.settings import Settings
from tests.rollout.test_follower import write_log
from tests.streams.conftest import make_result
from tests.streams.test_worker import emit

pytestmark = [pytest.mark.timeout(180), pytest.mark.service]

LAG_MS = 100  # the goal: no 10 ms sleep of the worker's loop ends more than this late
DOWN_S = 6
STOP_S = 10.0  # the goal: SIGTERM to exit with the broker down (Faust's own stop: ~2 s)
FLUSH_S = 10.0  # the stop test's flush interval: time to stop the broker between flushes


@pytest.fixture
def broker(tmp_path):
    """A broker of the test's own, started, with every topic; settings of hour windows."""
    for proc, settings in private_broker(tmp_path / "broker", "loop."):
        proc.start(timeout=30)
        settings = settings.model_copy(
            update={"window_seconds": 3600, "flush_seconds": 0.5, "state_dir": tmp_path}
        )
        ensure_topics(settings)
        yield proc, settings


def test_the_worker_loop_never_waits_on_kafka(broker, tmp_path):
    proc, settings = broker
    write_log(settings, 8000, batch=True, rollouts=80)  # a long log; "new" is not in it
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait(lambda s: bool(s["assignment"]) and s["rollout_log"]["caught_up"])
        emit(settings, [make_result(i, rollout="new") for i in range(50)])
        status = worker.wait(lambda s: "new" in s["control"])
        assert status["control"]["new"]["weight"] == 0  # judged against the log read
        appeared = status["loop_lag_ms"]
        proc.stop(timeout=5)
        deadline = time.monotonic() + DOWN_S
        while time.monotonic() < deadline:  # the worker answers, its follower retries
            status = worker.status()
            assert status is not None, worker.tail()
            time.sleep(0.5)
        assert status["rollout_log"]["caught_up"]  # it keeps the state it read
        down = status["loop_lag_ms"]
        print(f"loop lag (ms): {appeared} until the new rollout was judged, {down} after")
        assert appeared["held_max"] < LAG_MS, worker.tail()
        assert down["held_max"] < LAG_MS, worker.tail()
    finally:
        worker.stop(signal.SIGKILL)


def test_the_worker_stops_within_seconds_while_the_broker_is_down(broker, tmp_path):
    """With partials pending (read, flushed while the broker is down) and its clients
    retrying; before, Faust's stop waited for the producer and its consumer thread."""
    proc, settings = broker
    settings = settings.model_copy(update={"flush_seconds": FLUSH_S})
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait(lambda s: bool(s["assignment"]) and s["rollout_log"]["caught_up"], 90)
        emit(settings, [make_result(i) for i in range(50)])
        flushed = worker.wait(lambda s: s["counters"]["partials"] > 0)["counters"]["partials"]
        emit(settings, [make_result(i) for i in range(50, 100)])  # the next flush: FLUSH_S on
        worker.wait(lambda s: s["counters"]["results"] == 100)
        proc.stop(timeout=0.5)
        time.sleep(FLUSH_S)  # that flush: its partials wait for the broker
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
        assert (worker.status() or {})["counters"]["partials"] == flushed, worker.tail()
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            code = None
        print(f"stopped in {time.monotonic() - began:.1f} s with the broker down")
        assert code == 0, f"no clean exit within {STOP_S} s\n{worker.tail()}"
    finally:
        worker.stop(signal.SIGKILL)


def test_no_partial_is_judged_before_the_rollout_log_is_read(kafka_bootstrap, tmp_path):
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        clickhouse_url=None,
        state_dir=tmp_path,
        window_seconds=3600,
        flush_seconds=0.5,
    )
    rollout_topic = settings.topics.rollout
    others = {name: n for name, n in settings.topics.all().items() if name != rollout_topic}
    with admin_client(settings.bootstrap_servers) as admin:  # every topic but the log
        admin.create_topics([NewTopic(name, n, -1) for name, n in others.items()])
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_assigned()
        emit(settings, [make_result(i) for i in range(50)])
        status = worker.wait(lambda s: s["counters"]["partials"] > 0)
        time.sleep(2)  # time enough to merge them
        status = worker.status() or {}
        assert "does not exist" in (status["rollout_log"]["error"] or ""), status["rollout_log"]
        assert status["rollouts"] == {} and status["control"] == {}  # nothing judged blind
        ensure_topics(settings)
        writer = RolloutWriter(settings)
        writer.append(RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1))
        writer.close()
        status = worker.wait(lambda s: "kai" in s["control"])
        assert (status["control"]["kai"]["phase"], status["control"]["kai"]["weight"]) == (1, 50)
        assert status["rollout_log"] == {"caught_up": True, "error": None}
        one = fetch_status(worker.settings, "kai")  # /status?rollout=kai
        assert list(one["rollouts"]) == list(one["control"]) == ["kai"]
        unknown = fetch_status(worker.settings, "nobody")  # a 404 that says why
        assert unknown["control"] == {} and "rollout 'nobody'" in unknown["error"]
    finally:
        worker.stop()
