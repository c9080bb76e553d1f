"""Rollback decisions on simulated rollouts, in memory: false alarms and detection delays.

Each rollout is candidate traffic from the simulator core (``producers.simulator``) at
10 events/s, aggregated into 60-s windows and handed to stage 2 at the worker's cadence:
every ``flush_seconds`` (1 s) one partial per source partition (4) that read events, each
a look, so about 4 looks of 2-3 events a second. It runs at phase 3 (weight 100, so both
an emergency and a partial trigger roll back) of the default plan.

Scenarios (candidate events per rollout):

- ``aa``: 97% success, baseline-like latency, 10,000 events: any rollback is false.
- ``degrade``: 97% success, then 85% after 1,000 events (3,000 in all).
- ``latency``: the candidate's latency (P95 included) +50% after 1,000 events.

Rules, on the same traffic: ``phasegate`` (the worker's CUSUM triggers,
``streams.triggers.RolloutMonitor``) and ``naive`` (the point estimate of the current
window checked at every look once it has the trigger's minimum sample: success < 90%,
P95 > its limit, or a critical error).

The ``guardrails`` table (``bench.guardrail_rows``) runs two-system rollouts: the default
plan's guardrails and attribution against today's fixed-limit rule; the ``confidence``
table (``bench.confidence_rows``) the confidence and feedback guardrails a plan may add.

    python -m bench.bench_gates [--runs 500] [--jobs 2] [--only fixed|guardrails|confidence]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace

from bench import confidence_rows, gate_verdicts, guardrail_rows
from bench.common import median, print_table
from producers.simulator import SCENARIOS, SystemProfile, Traffic
from rollout.state import fold
from schemas.events import Alert, RolloutEvent
from schemas.internal import Partial
from schemas.metrics import quantile_of
from schemas.plan import Plan, Trigger, load_plan
from schemas.settings import Settings
from schemas.stats import wilson
from schemas.topics import PARTITIONS as TOPIC_PARTITIONS
from schemas.topics import Topic
from streams.aggregate import WindowStats
from streams.triggers import RolloutMonitor
from streams.windows import RolloutView, to_datetime

RATE = 10  # candidate events per second
FLUSH = Settings.model_fields["flush_seconds"].default  # the worker flushes this often ...
PARTITIONS = TOPIC_PARTITIONS[Topic.RESULTS]  # ... one partial per source partition
BATCH = round(RATE * FLUSH)  # events per flush
WINDOW = 60
ONSET = 1000
GOAL_EVENTS = 1000

_HEALTHY = replace(SCENARIOS["degrade"].candidate, success=0.97)
_AA = replace(SCENARIOS["aa"].candidate, success=0.97)


@dataclass(frozen=True)
class Case:
    name: str
    before: SystemProfile
    after: SystemProfile
    events: int
    onset: int | None  # None: nothing changes (A/A)


CASES = {
    "aa": Case("aa", _AA, _AA, 10_000, None),
    "degrade": Case("degrade", _HEALTHY, replace(_HEALTHY, success=0.85), 3000, ONSET),
    "latency": Case(
        "latency",
        _HEALTHY,
        replace(_HEALTHY, latency_median_ms=_HEALTHY.latency_median_ms * 1.5),
        3000,
        ONSET,
    ),
}


def as_result(draw) -> SimpleNamespace:
    """A simulator draw with the attributes ``WindowStats.add_results`` reads."""
    error = None
    if draw.error is not None:
        error = SimpleNamespace(type=draw.error[0], critical=draw.error[1])
    return SimpleNamespace(
        success=draw.success,
        confidence=draw.confidence,
        latency_ms=draw.latency_ms,
        error=error,
        fallback=False,
        rules=draw.rules,
        weight=100,
        segment=draw.segment,
    )


class Naive:
    """The point estimate of the current window against each fixed limit, at every look
    (a guardrail has no fixed limit: it is left out)."""

    def __init__(self, plan: Plan) -> None:
        self.triggers = [t for t in plan.rollback if not t.guardrail]
        self.start: int | None = None
        self.latencies: list[float] = []
        self.n = self.fails = self.critical = 0

    def look(self, start: int, draws: list, partition: int) -> bool:
        if start != self.start:
            self.start, self.latencies, self.n, self.fails, self.critical = start, [], 0, 0, 0
        self.n += len(draws)
        self.fails += sum(not d.success for d in draws)
        self.critical += sum(bool(d.error and d.error[1]) for d in draws)
        self.latencies += [d.latency_ms for d in draws]
        return any(self._fires(t) for t in self.triggers)

    def _fires(self, t: Trigger) -> bool:
        if t.metric == "critical_errors":
            return self.critical > t.limit
        if self.n < t.min_samples:
            return False
        if t.metric == "success_rate":
            return 1 - self.fails / self.n < t.limit
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile_of(t.metric) * len(ordered)))] > t.limit


class Phasegate:
    """The worker's triggers, fed real partials of real window aggregates."""

    def __init__(self, plan: Plan) -> None:
        self.view = RolloutView("bench", WINDOW)
        self.monitor = RolloutMonitor("bench", plan, WINDOW)
        self.state = fold(
            [RolloutEvent(rollout="bench", type="phase_started", weight=100, phase=3)], "bench"
        )
        self.offsets = [0] * PARTITIONS

    def look(self, start: int, draws: list, partition: int) -> bool:
        stats = WindowStats()
        stats.add_results([as_result(d) for d in draws])  # type: ignore[misc]
        partial = Partial(
            rollout="bench",
            system=self.monitor.plan.roles.candidate,
            window_start=to_datetime(start),
            window_seconds=WINDOW,
            source_topic="results",
            partition=partition,
            first_offset=self.offsets[partition],
            last_offset=self.offsets[partition] + len(draws) - 1,
            committed_offset=self.offsets[partition],
            stats=stats.to_state(),
        )
        self.offsets[partition] += len(draws)
        system, window = self.view.apply(partial)
        out = self.monitor.observe(self.view, system, window, self.state)
        if window % (10 * WINDOW) == 0:
            self.view.expire(window - 5 * WINDOW)
            self.monitor.forget(window - 5 * WINDOW)
        return any(isinstance(o, Alert) and o.kind != "recovered" for o in out)


def run_once(case: Case, seed: int, plan: Plan) -> dict[str, int | None]:
    """Candidate events until each rule's first alarm (None: never)."""
    traffic = Traffic(seed)
    rules = {"phasegate": Phasegate(plan), "naive": Naive(plan)}
    fired: dict[str, int | None] = dict.fromkeys(rules)
    for first in range(0, case.events, BATCH):
        profile = case.after if case.onset is not None and first >= case.onset else case.before
        draws = [traffic.draw("u", True, profile) for _ in range(BATCH)]
        start = (first // RATE) // WINDOW * WINDOW
        for partition in range(PARTITIONS):  # units hash to partitions: an even spread
            part = draws[partition::PARTITIONS]
            for name, rule in rules.items():
                if part and fired[name] is None and rule.look(start, part, partition):
                    fired[name] = first + BATCH
        if all(v is not None for v in fired.values()):
            break
    return fired


@dataclass
class Outcome:
    """What one rule did over the runs of one scenario."""

    runs: int = 0
    early: int = 0  # alarms before the onset (false), or any alarm in A/A
    delays: list[int] | None = None  # events after the onset until the alarm

    def add(self, fired: int | None, onset: int | None) -> None:
        self.runs += 1
        self.delays = self.delays or []
        if fired is None:
            return
        if onset is None or fired <= onset:
            self.early += 1
        else:
            self.delays.append(fired - onset)

    def detected_within(self, events: int) -> int:
        return sum(d <= events for d in self.delays or [])


def run_case(case: Case, runs: int, plan: Plan, seed: int = 0) -> dict[str, Outcome]:
    outcomes = {"phasegate": Outcome(), "naive": Outcome()}
    for k in range(runs):
        for name, fired in run_once(case, seed + k, plan).items():
            outcomes[name].add(fired, case.onset)
    return outcomes


def _share(k: int, n: int) -> str:
    est = wilson(k, n)
    return f"{k / n:.1%} ({est.low:.1%}-{est.high:.1%})" if est else "-"


def _pct(values: list[int], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]:,}"


def fixed_limit_table(runs: int, jobs: int) -> tuple[str, list[str], list[list[str]]]:
    """The seed's triggers against the naive rule, candidate traffic alone (one process)."""
    plan = load_plan()
    h = plan.sequential.threshold(len(plan.statistical_triggers))
    rows = []
    began = time.perf_counter()
    for case in CASES.values():
        for rule, o in run_case(case, runs, plan).items():
            d = o.delays or []
            if case.onset is None:
                rows.append([case.name, rule, _share(o.early, o.runs), "-", "-", "-"])
                continue
            rows.append(
                [
                    case.name,
                    rule,
                    _share(o.early, o.runs),
                    _share(o.detected_within(GOAL_EVENTS), o.runs),
                    f"{median(d):,.0f}" if d else "-",
                    _pct(d, 0.95),
                ]
            )
    title = (
        f"Rollback decisions on {runs} simulated rollouts per scenario "
        f"(CUSUM h = {h:.1f}; {time.perf_counter() - began:.0f} s)"
    )
    columns = [
        "scenario",
        "rule",
        "false rollbacks (95% CI)",
        f"detected within {GOAL_EVENTS:,}",
        "median delay",
        "p95 delay",
    ]
    return title, columns, rows


# Each table: (runs, jobs) -> (title, columns, rows); other modules add theirs here.
TABLES: dict[str, Callable[[int, int], tuple[str, list[str], list[list[str]]]]] = {
    "fixed": fixed_limit_table,
    "guardrails": guardrail_rows.table,
    "confidence": confidence_rows.confidence_table,  # confidence and feedback guardrails
    "gates": lambda runs, jobs: gate_verdicts.rows(runs, workers=jobs),  # false pass, flips
}
GENERATORS = {  # printed above each table: its generator and parameters
    "fixed": __doc__,
    "guardrails": guardrail_rows.__doc__,
    "confidence": confidence_rows.__doc__,
    "gates": gate_verdicts.__doc__,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="simulated rollouts per scenario")
    parser.add_argument("--jobs", type=int, default=2, help="processes (tables that use them)")
    parser.add_argument("--only", choices=sorted(TABLES), action="append", help="these tables")
    args = parser.parse_args()
    for name in args.only or TABLES:
        print(GENERATORS[name])
        print_table(*TABLES[name](args.runs, args.jobs), width=160)


if __name__ == "__main__":
    main()
