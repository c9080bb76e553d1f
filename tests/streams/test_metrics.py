"""/metrics: the status dict as Prometheus text, checked with prometheus_client's parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.metrics import METRICS
from streams.metrics import prometheus_text
from tests.streams.status_sample import sample_status, trial_plan


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(samples: dict, name: str, **labels: str) -> float:
    return samples[(f"phasegate_{name}", tuple(sorted(labels.items())))]


@pytest.fixture(scope="module")
def status() -> dict[str, Any]:
    return sample_status()


def test_every_rolling_figure_is_exported_with_its_labels(status: dict[str, Any]) -> None:
    samples = _samples(prometheus_text(status))
    for span, rolling in status["rollouts"]["kai-response"]["rolling"].items():
        for system, w in rolling["systems"].items():
            at = {"rollout": "kai-response", "system": system, "window": span}
            assert _get(samples, "window_events", **at) == w["count"]
            for name, m in METRICS.items():  # every metric of the registry, by its name
                if w[name] is None:
                    continue
                assert _get(samples, name, **at) == w[name]["value"]
                if m.unit != "count":
                    assert _get(samples, f"{name}_lower", **at) == w[name]["low"]
                    assert _get(samples, f"{name}_upper", **at) == w[name]["high"]
            for kind, count in w["errors"].items():
                assert _get(samples, "errors", **at, type=kind) == count
            for verdict, count in w["feedback"].items():
                assert _get(samples, "feedback", **at, verdict=verdict) == count
        for metric, value in rolling["delta"].items():
            at = {"rollout": "kai-response", "window": span, "metric": metric}
            assert _get(samples, "delta", **at) == value


def test_counters_are_counters(status: dict[str, Any]) -> None:
    text = prometheus_text(status)
    kinds = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert kinds["phasegate_worker_alerts"] == "counter"
    assert kinds["phasegate_success_rate"] == "gauge"
    samples = _samples(text)
    assert _get(samples, "worker_alerts_total") == 2
    assert _get(samples, "worker_results_total") == 800
    assert _get(samples, "worker_assigned_partitions") == 2


def test_empty_figures_are_left_out_not_zero() -> None:
    status = sample_status()
    window = status["rollouts"]["kai-response"]["rolling"]["300"]["systems"]["production"]
    window["success_rate"] = None
    samples = _samples(prometheus_text(status))
    at = {"rollout": "kai-response", "system": "production", "window": "300"}
    assert ("phasegate_success_rate", tuple(sorted(at.items()))) not in samples
    assert _get(samples, "p95_latency_ms", **at) > 0


def test_label_values_are_escaped() -> None:
    status = sample_status(rollout='odd "name"\\with\nnewline')
    samples = _samples(prometheus_text(status))
    labels = {"rollout": 'odd "name"\\with\nnewline', "system": "pipeline", "window": "900"}
    assert _get(samples, "window_events", **labels) == 400


def test_a_worker_without_rollouts_still_answers() -> None:
    text = prometheus_text({"counters": {"results": 0}, "assignment": [], "rollouts": {}})
    assert _samples(text) == {
        ("phasegate_worker_results_total", ()): 0.0,
        ("phasegate_worker_assigned_partitions", ()): 0.0,
    }
    assert prometheus_text({}).startswith("# HELP phasegate_worker_assigned_partitions")


def test_phase_weight_gates_and_triggers(status: dict[str, Any]) -> None:
    samples = _samples(prometheus_text(status))
    control = status["control"]["kai-response"]
    assert _get(samples, "rollout_weight", rollout="kai-response") == 50
    assert _get(samples, "rollout_phase", rollout="kai-response") == 1
    assert _get(samples, "open_incidents", rollout="kai-response") == 1
    at = {"rollout": "kai-response", "trigger": "success-emergency"}
    assert _get(samples, "trigger_score", **at) == 2.5
    assert _get(samples, "trigger_threshold", **at) == 18.4
    gates = control["gates"]
    phase = {"rollout": "kai-response", "phase": "1"}
    for outcome in ("pass", "fail", "inconclusive"):
        expected = float(gates["outcome"] == outcome)
        assert _get(samples, "gates_outcome", **phase, outcome=outcome) == expected
    for v in gates["verdicts"]:
        gate = {**phase, "criterion": v["criterion"], "metric": v["metric"]}
        assert _get(samples, "gate_threshold", **gate) == v["threshold"]
        assert _get(samples, "gate_samples", **gate) == v["samples"]
        assert _get(samples, "gate_verdict", **gate, outcome=v["outcome"]) == 1
        if v["observed"] is not None:
            assert _get(samples, "gate_observed", **gate) == v["observed"]


def test_dry_run_triggers_are_marked() -> None:
    control = {"kai": {"weight": 50, "phase": 1, "incidents": [], "dry_run": ["success-guardrail"]}}
    samples = _samples(prometheus_text({"control": control}))
    assert _get(samples, "trigger_dry_run", rollout="kai", trigger="success-guardrail") == 1


def test_dry_run_gate_criteria_are_marked() -> None:
    status = sample_status(plan=trial_plan())
    samples = _samples(prometheus_text(status))
    phase = {"rollout": "kai-response", "phase": "1", "metric": "success_rate"}
    assert _get(samples, "gate_dry_run", **phase, criterion="success_rate >= 0.999") == 1
    assert _get(samples, "gate_dry_run", **phase, criterion="success_rate >= 0.5") == 0
