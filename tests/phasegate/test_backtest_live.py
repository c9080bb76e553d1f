"""A backtest of a stored live run reproduces the live run's alerts and actions.

Real all the way: Tansu, a ``phasegate worker`` and a ``phasegate sink`` process, the
ClickHouse 18.16 server. The candidate drops from 97.8% to 85% success halfway through a
10-second run; the worker rolls it back to 0; the sink stores everything. Then
``sinks.backtest`` replays the stored events with the same plan and settings.

What must match is what the ids and the actions derive from: the alert's window (the
window its CUSUM run began in, and the one it fired in) and the anchor. The live worker
flushes on its own wall-clock phase, the backtest on event-time ticks (and this server
keeps whole seconds), so the batches differ: a run that began right at a window's edge
could be seen to begin in the neighbouring window. The run is timed so the drop and the
firing fall inside one 10-s window, as they do for any drop that is not at an edge; the
events counted by the alert (``samples``, ``observed``) may differ by a batch.
"""

from __future__ import annotations

import time

import pytest

from phasegate.testing.processes import SinkProcess, WorkerProcess, wait_for
from producers import live
from schemas.plan import load_plan
from sinks import backtest
from sinks.store import open_store

pytestmark = pytest.mark.timeout(240)
ROLLOUT = "bt-live"
WINDOW = 10


def _wait_until_window_phase(phase: float) -> None:
    """Sleep until the wall clock is ``phase`` seconds into a window."""
    time.sleep((phase - time.time()) % WINDOW)


def test_backtest_of_a_live_run_gives_its_alerts_exactly(settings, tmp_path):
    settings = settings.model_copy(update={"window_seconds": WINDOW, "flush_seconds": 0.5})
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    sink = SinkProcess(settings, tmp_path / "sink.log").start()
    store = open_store(settings)
    try:
        worker.wait_assigned()
        # the drop comes 5 s after the start whatever the producer's pace: ~3-4 s into a
        # window, the firing (~400 candidate events later) well before its end
        _wait_until_window_phase(WINDOW - 2)
        summary = live.run(
            settings, "degrade", duration_s=10, rate=600, rollout=ROLLOUT, set_weight=50
        )
        sent = sum(summary.per_system.values())
        db = settings.database

        def stored() -> bool:
            n = store.query(
                f"SELECT count() FROM {db}.results WHERE rollout = %(r)s", {"r": ROLLOUT}
            )
            rollbacks = store.query(
                f"SELECT count() FROM {db}.rollout_events WHERE rollout = %(r)s "
                "AND type = 'rollback'",
                {"r": ROLLOUT},
            )
            return n.scalar() == sent and rollbacks.scalar() == 1

        wait_for(stored, "the run, its alerts and the rollback in ClickHouse", 90, worker, sink)
        time.sleep(2)  # alerts raised after the rollback (none expected) reach the store
        live_alerts = store.query(
            "SELECT alert_id, kind, window_start, window_end, action_weight_from, "
            f"action_weight_to FROM {db}.alerts FINAL WHERE rollout = %(r)s ORDER BY ts",
            {"r": ROLLOUT},
        ).rows
        findings = backtest.backtest(store, settings, load_plan(settings.plan), ROLLOUT)
    finally:
        sink.stop()
        worker.stop()
        store.close()

    replayed = [
        (
            a.alert_id,
            a.kind,
            a.window.start,
            a.window.end,
            a.action and a.action.weight_from,
            a.action and a.action.weight_to,
        )
        for a in findings.alerts
    ]
    assert [a[1] for a in live_alerts].count("emergency_rollback") == 1, live_alerts
    assert sorted(replayed) == sorted(tuple(a) for a in live_alerts)
    (action,) = findings.actions
    assert (action.type, action.weight) == ("rollback", 0)
    assert findings.events == sent + summary.feedback
