"""Through the worker (real broker): a confidence, latency or complaint alert says where
the candidate is worse, and in what."""

from __future__ import annotations

import json
import math
import random
import time

import pytest

from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE, with_triggers
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import read_values
from producers.emitter import Emitter
from schemas.codec import decode
from schemas.events import Alert
from schemas.plan import load_plan
from tests.streams.conftest import make_result

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
