"""Through the worker (real broker): a confidence, latency or complaint alert says where
the candidate is worse, and in what."""

from __future__ import annotations

import json
import math
import random
import time
from datetime import UTC, datetime

import pytest

from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE, with_triggers
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import read_values
from producers.emitter import Emitter
from rollout.writer import RolloutWriter
from schemas.codec import decode
from schemas.events import Alert, RolloutEvent
from schemas.plan import load_plan
from streams.triggers import GRACE
from streams.windows import window_at
from tests.streams.conftest import make_result
from tests.streams.test_worker import emit

pytestmark = pytest.mark.timeout(240)
RATE = 150  # results a second, each system


def _second(emitter: Emitter, rng: random.Random, case: str, worse: bool, first: int) -> None:
    """One second of results stamped now (and for ``complaints`` a verdict on each that
    names its rule); with ``worse``, the candidate's rule r7 answers are worse in ``case``:
    confidence 0.5 (else 0.85), latency 400 ms (else 100), 60% complaints (else 10%)."""
    for i in range(first, first + RATE):
        for system in ("pipeline", "production"):
            rule = rng.choice(("r1", "r7"))
            bad = worse and system == "production" and rule == "r7"
            mean = 0.5 if bad and case == "confidence" else 0.85
            confidence = rng.betavariate(12 * mean, 12 * (1 - mean))
            latency = rng.lognormvariate(math.log(400 if bad and case == "latency" else 100), 0.2)
            r = make_result(i, system=system, rules=(rule,), confidence=confidence)
            update = {"ts": r.ts.now(r.ts.tzinfo), "weight": 50, "latency_ms": latency}
            assert emitter.emit(r.model_copy(update=update))
            if case == "complaints":
                complaint = rng.random() < (0.6 if bad else 0.1)
                verdict = "incorrect" if complaint else "correct"
                assert emitter.emit_feedback("kai", r.query_id, system, verdict, rules=r.rules)
    emitter.flush(10)


def _alerts(settings, metric: str, timeout: float = 20.0) -> list[Alert]:
    """The alerts topic once it holds an alert on ``metric`` (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        values = read_values(settings.bootstrap_servers, settings.topics.alerts, 1, timeout)
        alerts = [decode(v, Alert) for v in values]
        if any(a.metric == metric for a in alerts) or time.monotonic() > deadline:
            return alerts
        time.sleep(0.2)


CASES = {  # case: extra trigger, the alert's metric, its incident, what contributors count
    "confidence": (CONFIDENCE, "mean_confidence", "confidence-guardrail", "confidence deficit"),
    "latency": (None, "p95_latency_ms", "latency-partial", "slow events (> 250 ms)"),
    "complaints": (COMPLAINTS, "complaint_rate", "complaint-guardrail", "complaints"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_alert_carries_the_rule_its_bad_events_concentrate_on(kafka_settings, tmp_path, case):
    extra, metric, incident, counts = CASES[case]
    plan = tmp_path / "plan.json"
    triggers = [extra] if extra else []
    plan.write_text(json.dumps(with_triggers(load_plan(), *triggers).model_dump(mode="json")))
    settings = kafka_settings.model_copy(
        update={"window_seconds": 1, "flush_seconds": 0.2, "plan": plan}
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_assigned()
        rng = random.Random(7)
        with Emitter(settings) as emitter:
            for second in range(25):
                started = time.monotonic()
                _second(emitter, rng, case, worse=second >= 12, first=second * RATE)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        worker.wait(lambda s: incident in s["control"]["kai"]["incidents"])
        alerts = _alerts(settings, metric)
    finally:
        worker.stop()
    on_metric = [a for a in alerts if a.metric == metric and a.kind != "recovered"]
    assert on_metric and all(a.contributors for a in on_metric), alerts
    assert counts in {a.contributors[0].counts for a in on_metric}
    for alert in on_metric:
        top = alert.contributors[0]
        assert (top.dimension, top.value) == ("rule", "r7"), alert
        assert top.candidate > 2 * top.expected


def test_a_rollback_fired_as_traffic_stops_goes_out_all_the_same(kafka_settings, tmp_path):
    """Both systems healthy in one window; once the worker has read them, the candidate
    alone fails in the next, and then nothing comes. The firing events were read after
    the baseline's last, so the rollback waits for the baseline's; none come, and the
    worker's release timer sends it :data:`GRACE` seconds after it fired."""
    settings = kafka_settings.model_copy(update={"window_seconds": 10, "flush_seconds": 0.2})
    writer = RolloutWriter(settings)
    writer.append(RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1))
    writer.close()
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_assigned()
        now = time.time()
        before = datetime.fromtimestamp(window_at(now, 10) - 5, UTC)  # the window before
        healthy = [
            make_result(i, system=s, rollout="kai").model_copy(update={"ts": before, "weight": 50})
            for i in range(300)
            for s in ("pipeline", "production")
        ]
        emit(settings, healthy)
        worker.wait(lambda s: _counted(s, "pipeline") >= 300)
        failing = [
            make_result(i, success=i % 10 < 3, rollout="kai").model_copy(
                update={"ts": datetime.fromtimestamp(now, UTC), "weight": 50}
            )
            for i in range(300, 700)
        ]
        emit(settings, failing)
        sent = time.monotonic()
        worker.wait(lambda s: "success-emergency" in s["control"]["kai"]["incidents"])
        alerts = _alerts(settings, "success_rate", timeout=GRACE + 10)
        waited = time.monotonic() - sent
    finally:
        worker.stop()
    (alert,) = [a for a in alerts if a.kind == "emergency_rollback"]
    assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)
    assert waited > GRACE / 2  # it waited for the baseline's events, then went out


def _counted(status: dict, system: str) -> int:
    windows = status["rollouts"].get("kai", {}).get("systems", {}).get(system) or []
    return sum(w["count"] for w in windows)
