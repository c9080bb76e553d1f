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
events counted by the alert (``samples``, ``observed``) may differ by a batch, and so may
its contributors' counts (over the alert's windows as they stood when it fired): the
values that carry the drop (the simulator's segment ``de`` and error type ``timeout``)
lead both; a small rule at the tail of the top 5 may differ.
"""

from __future__ import annotations

import time

import pytest

from phasegate.testing.processes import SinkProcess, WorkerProcess, wait_for
from producers import live
from schemas.events import Alert, Contributor
from schemas.plan import load_plan
from sinks import backtest
from sinks.rows import model_of
from sinks.store import open_store

pytestmark = pytest.mark.timeout(240)
ROLLOUT = "bt-live"
WINDOW = 10


def _wait_until_window_phase(phase: float) -> None:
    """Sleep until the wall clock is ``phase`` seconds into a window."""
    time.sleep((phase - time.time()) % WINDOW)


def _identity(alert: Alert) -> tuple:
    """What a backtest must reproduce exactly: the id, kind, cause, windows and action."""
    action = alert.action
    return (
        alert.alert_id,
        alert.kind,
        alert.attribution,
        alert.window.start,
        alert.window.end,
        action and action.weight_from,
        action and action.weight_to,
    )


def _named(c: Contributor) -> tuple[str, str]:
    return (c.dimension, c.value)


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
        live_alerts = [
            model_of(Alert, row)
            for row in store.query(
                f"SELECT * FROM {db}.alerts FINAL WHERE rollout = %(r)s ORDER BY ts",
                {"r": ROLLOUT},
            ).dicts()
        ]
        findings = backtest.backtest(store, settings, load_plan(settings.plan), ROLLOUT)
    finally:
        sink.stop()
        worker.stop()
        store.close()

    assert [a.kind for a in live_alerts].count("emergency_rollback") == 1, live_alerts
    assert sorted(map(_identity, findings.alerts)) == sorted(map(_identity, live_alerts))
    replayed = {a.alert_id: a for a in findings.alerts}
    for alert in live_alerts:  # the planted cause leads both; counts differ by a batch
        leading = {_named(c) for c in alert.contributors[:2]}
        assert leading == {_named(c) for c in replayed[alert.alert_id].contributors[:2]}
        assert not alert.contributors or ("segment", "de") in leading, alert.contributors
    (action,) = findings.actions
    assert (action.type, action.weight) == ("rollback", 0)
    assert findings.events == sent + summary.feedback
