"""The worker's ``/status`` as Prometheus text exposition (version 0.0.4), for ``/metrics``.

A pure function of the status dict (``streams.app``: counters, assignment, rollouts and
the control section: phase, weight, gate verdicts, incidents), so it is tested without a
broker. Every rolling span becomes a ``window`` label (seconds), every
rollout and system a label, and figures the status leaves empty (``None``: no events yet)
are left out rather than exported as zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.metrics import METRICS

CONTENT_TYPE = "text/plain; version=0.0.4"
PREFIX = "phasegate_"

Labels = Mapping[str, str]


@dataclass
class Family:
    """One metric family: its samples, each as its exposition line (rendered as it is
    added, so a scrape built rollout by rollout leaves only the joining to the end)."""

    name: str
    help: str
    kind: str = "gauge"
    samples: list[str] = field(default_factory=list)

    def add(self, labels: Labels, value: Any) -> None:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            name, number = PREFIX + self.name, _number(float(value))
            self.samples.append(f"{name}{{{body}}} {number}" if body else f"{name} {number}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render(families: Iterable[Family]) -> str:
    """The text exposition of ``families``; families without samples are omitted."""
    lines: list[str] = []
    for fam in families:
        if fam.samples:
            name = PREFIX + fam.name
            lines += (f"# HELP {name} {fam.help}", f"# TYPE {name} {fam.kind}", *fam.samples)
    return "\n".join(lines) + "\n" if lines else ""


def _value(estimate: Mapping[str, float] | None, key: str = "value") -> float | None:
    return None if estimate is None else estimate.get(key)


class Families:
    """The families of one scrape, created on first use in a stable order."""

    def __init__(self) -> None:
        self.by_name: dict[str, Family] = {}

    def __call__(self, name: str, help: str, kind: str = "gauge") -> Family:
        if name not in self.by_name:
            self.by_name[name] = Family(name, help, kind)
        return self.by_name[name]


def _window_families(f: Families, labels: dict[str, str], w: Mapping[str, Any]) -> None:
    f("window_events", "events in the rolling window").add(labels, w.get("count"))
    for name, m in METRICS.items():  # each metric by its registry name, unit and interval
        estimate = w.get(name)
        f(name, f"{m.title} in the rolling window ({m.unit})").add(labels, _value(estimate))
        if m.unit != "count":
            for end, word in (("low", "lower"), ("high", "upper")):
                f(f"{name}_{word}", f"{word} bound of the {m.title}'s 95% interval").add(
                    labels, _value(estimate, end)
                )
    errors = f("errors", "errors in the rolling window by type")
    for kind, count in sorted((w.get("errors") or {}).items()):
        errors.add({**labels, "type": kind}, count)
    feedback = f("feedback", "user verdicts in the rolling window")
    for verdict, count in sorted((w.get("feedback") or {}).items()):
        feedback.add({**labels, "verdict": verdict}, count)


def families(status: Mapping[str, Any]) -> Iterator[Family]:
    """Every family of one ``/status`` snapshot."""
    f = Families()
    worker_families(f, status)
    views, controls = status.get("rollouts") or {}, status.get("control") or {}
    for rollout in sorted({*views, *controls}):
        control = (controls[rollout] or {}) if rollout in controls else None
        rollout_families(f, rollout, views.get(rollout), control)
    yield from f.by_name.values()


def worker_families(f: Families, worker: Mapping[str, Any]) -> None:
    """The worker's counters and assignment (the ``worker`` sections of ``/status``)."""
    for name, count in sorted((worker.get("counters") or {}).items()):
        f(f"worker_{name}_total", f"{name} counted by this worker since it started", "counter").add(
            {}, count
        )
    f("worker_assigned_partitions", "partitions this worker owns").add(
        {}, len(worker.get("assignment") or [])
    )


def rollout_families(
    f: Families, rollout: str, view: Mapping[str, Any] | None, control: Mapping[str, Any] | None
) -> None:
    """One rollout's rolling windows (``view``: ``streams.status.view_json``) and control."""
    for span, rolling in sorted(
        ((view or {}).get("rolling") or {}).items(), key=lambda s: int(s[0])
    ):
        for system, w in sorted((rolling.get("systems") or {}).items()):
            _window_families(f, {"rollout": rollout, "system": system, "window": span}, w)
        delta = f("delta", "candidate minus baseline in the rolling window, by metric")
        for metric, value in sorted((rolling.get("delta") or {}).items()):
            delta.add({"rollout": rollout, "window": span, "metric": metric}, value)
    if control is not None:
        _control_families(f, rollout, control)


OUTCOMES = ("pass", "fail", "inconclusive")


def _control_families(f: Families, rollout: str, control: Mapping[str, Any]) -> None:
    """Phase, weight, gate verdicts, open incidents and trigger evidence of one rollout."""
    at = {"rollout": rollout}
    f("rollout_weight", "candidate weight in percent (the worker's fold of the rollout log)").add(
        at, control.get("weight")
    )
    f("rollout_phase", "current phase (0: not running)").add(at, control.get("phase"))
    incidents = control.get("incidents") or []
    f("open_incidents", "rollback triggers with an open incident").add(at, len(incidents))
    for name, ev in sorted((control.get("evidence") or {}).items()):
        trigger = {**at, "trigger": name}
        f("trigger_score", "sequential evidence of a rollback trigger (CUSUM)").add(
            trigger, ev.get("score")
        )
        f("trigger_threshold", "score at which the trigger fires").add(trigger, ev.get("threshold"))
    for name in control.get("dry_run") or []:
        f("trigger_dry_run", "a dry-run trigger: judged and alerted, never acted on").add(
            {**at, "trigger": name}, 1
        )
    gates = control.get("gates")
    if not gates:
        return
    phase = {**at, "phase": str(gates.get("phase"))}
    outcome = f("gates_outcome", "overall verdict of the current phase's gates (one-hot)")
    for name in OUTCOMES:
        outcome.add({**phase, "outcome": name}, gates.get("outcome") == name)
    for v in gates.get("verdicts") or []:
        gate = {**phase, "criterion": v["criterion"], "metric": v["metric"]}
        f("gate_observed", "observed value of a gate criterion").add(gate, v.get("observed"))
        f("gate_observed_lower", "lower bound of the gate's interval (a confidence sequence)").add(
            gate, v.get("low")
        )
        f("gate_observed_upper", "upper bound of the gate's interval (a confidence sequence)").add(
            gate, v.get("high")
        )
        f("gate_threshold", "threshold of a gate criterion").add(gate, v.get("threshold"))
        f("gate_samples", "samples a gate criterion was judged on").add(gate, v.get("samples"))
        f("gate_dry_run", "1: a dry-run criterion, shown but not counted").add(
            gate, v.get("dry_run", False)
        )
        verdict = f("gate_verdict", "verdict of a gate criterion (one-hot)")
        for name in OUTCOMES:
            verdict.add({**gate, "outcome": name}, v.get("outcome") == name)


def prometheus_text(status: Mapping[str, Any]) -> str:
    """``/status`` as Prometheus text exposition."""
    return render(families(status))
