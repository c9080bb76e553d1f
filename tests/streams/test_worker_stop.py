"""A worker told to stop (SIGTERM) while its broker is down stops within seconds.

Before, Faust's consumer thread ended on aiokafka's ``CancelledError`` without telling
its parent, which waited its 60 s shutdown timeout (``streams.transport``). Nothing is
committed on the way out: what stage 1 read but could not send is read again from the
last commit by the worker that follows.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from phasegate.stack import ensure_topics
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import private_broker
from tests.streams.conftest import make_result
from tests.streams.test_worker import emit

pytestmark = [pytest.mark.timeout(180), pytest.mark.service]

STOP_S = 10.0  # the goal: SIGTERM to exit (Faust's own stop takes about 2 s of it)
DOWN_S = 3.0  # the broker is down this long before the stop: its clients retry


@pytest.fixture
def broker(tmp_path):
    yield from private_broker(tmp_path / "broker", "stop.")


def test_the_worker_stops_within_seconds_while_the_broker_is_down(broker, tmp_path):
    proc, settings = broker
    proc.start(timeout=30)
    settings = settings.model_copy(
        update={"window_seconds": 3600, "flush_seconds": 0.5, "state_dir": tmp_path}
    )
    ensure_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait(lambda s: bool(s["assignment"]) and s["rollout_log"]["caught_up"], 90)
        emit(settings, [make_result(i) for i in range(50)])
        worker.wait(lambda s: s["counters"]["partials"] > 0)
        proc.stop(timeout=5)
        time.sleep(DOWN_S)
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            code = worker.proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - began
        print(f"stopped in {took:.1f} s with the broker down")
        assert code == 0, f"no clean exit within {STOP_S} s\n{worker.tail()}"
    finally:
        worker.stop(signal.SIGKILL)
