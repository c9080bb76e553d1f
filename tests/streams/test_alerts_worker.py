"""Through the worker (real broker): a confidence guardrail's alert says where, and in what."""

from __future__ import annotations

import json
import random
import time

import pytest

from phasegate.testing.guardrails import CONFIDENCE, with_triggers
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import read_values
from producers.emitter import Emitter
from schemas.codec import decode
from schemas.events import Alert
from schemas.plan import load_plan
from tests.streams.conftest import make_result

pytestmark = pytest.mark.timeout(240)
RATE = 150  # results a second, each system


def _second(emitter: Emitter, rng: random.Random, low: bool, first: int) -> None:
    """One second of results stamped now; with ``low``, the candidate's rule r7 answers
    at confidence 0.5 (its other answers and the baseline's at 0.85)."""
    for i in range(first, first + RATE):
        for system in ("pipeline", "production"):
            rule = rng.choice(("r1", "r7"))
            mean = 0.5 if low and system == "production" and rule == "r7" else 0.85
            confidence = rng.betavariate(12 * mean, 12 * (1 - mean))
            r = make_result(i, system=system, rules=(rule,), confidence=confidence)
            assert emitter.emit(r.model_copy(update={"ts": r.ts.now(r.ts.tzinfo), "weight": 50}))
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


def test_a_confidence_alert_carries_the_rule_its_deficit_concentrates_on(kafka_settings, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(with_triggers(load_plan(), CONFIDENCE).model_dump(mode="json")))
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
                _second(emitter, rng, low=second >= 12, first=second * RATE)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        worker.wait(lambda s: "confidence-guardrail" in s["control"]["kai"]["incidents"])
        alerts = _alerts(settings, "mean_confidence")
    finally:
        worker.stop()
    (alert,) = [a for a in alerts if a.metric == "mean_confidence"]
    assert alert.kind == "guardrail" and alert.contributors, alerts
    top = alert.contributors[0]
    assert (top.dimension, top.value, top.counts) == ("rule", "r7", "confidence deficit")
    assert top.candidate > 2 * top.expected
