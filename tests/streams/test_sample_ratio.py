"""The sample ratio mismatch (SRM) check: units since the last change, not events; fallback
copies left out; a mixture SPRT that stays valid however often it looks. Simulated healthy
rollouts warn within the budget, a router at 45% for weight 50 is caught at 10 events/s,
and a warning stands while the evidence does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from phasegate.testing.processes import WorkerProcess
from phasegate.testing.sample_ratio import WINDOW, run, split_alerts, stage2
from phasegate.testing.topics import read_values
from producers.emitter import Emitter
from producers.router import to_candidate
from rollout.state import RolloutState
from rollout.writer import RolloutWriter
from schemas.codec import decode
from schemas.events import Alert, RolloutEvent
from schemas.plan import SampleRatio, load_plan
from streams.sample_ratio import SampleRatioCheck, alpha_at
from streams.units import unit_hash
from streams.windows import PartitionAccumulator
from tests.streams.conftest import T0, make_result

PLAN = load_plan().model_copy(update={"sample_ratio": SampleRatio(min_samples=200)})


# ---------------------------------------------------------------- through stage 1 and 2
class Traffic:
    """Results through a real PartitionAccumulator into Stage 2, one window at a time."""

    def __init__(self, weight: int = 50, rollout: str = "kai") -> None:
        self.rollout, self.weight = rollout, weight
        self.stage2 = stage2(weight, PLAN)
        self.acc = PartitionAccumulator("results", 0, WINDOW, WINDOW, max_future=10**10)
        self.offset, self.outputs = 0, []
        self.base = make_result(0, rollout=rollout)

    def result(self, window: int, unit: str, system: str, **fields):
        self.offset += 1
        return self.base.model_copy(
            update={
                "event_id": make_result(self.offset).event_id,
                "ts": T0 + timedelta(seconds=window * WINDOW + (self.offset % 1000) / 1000),
                "unit_id": unit,
                "system": system,
                "query_id": f"q{self.offset}",
                "weight": self.weight,
                **fields,
            }
        )

    def window(self, window: int, queries: dict[str, int], fail_every: int = 0) -> None:
        """Each unit of ``queries`` sends that many queries, routed by the real hash; every
        ``fail_every``-th candidate query fails and the baseline serves a fallback copy."""
        results = []
        for unit, n in queries.items():
            cand = to_candidate(self.rollout, unit, self.weight)
            for _ in range(n):
                failed = cand and fail_every and self.offset % fail_every == 0
                system = "production" if cand else "pipeline"
                results.append(self.result(window, unit, system, success=not failed))
                if failed:
                    results.append(self.result(window, unit, "pipeline", fallback=True))
        first = self.offset - len(results) + 1
        for k, r in enumerate(results):
            self.acc.add(first + k, r, now=T0.timestamp())
        self.acc.committed(first)
        for partial in self.acc.drain():
            self.outputs += self.stage2.apply(partial)

    def split(self, windows: Iterator[int], queries: dict[str, int], **kw) -> list:
        for w in windows:
            self.window(w, queries, **kw)
        return split_alerts(self.outputs)

    def event_share(self) -> float:
        view = self.stage2.views[self.rollout]
        cand = sum(s.count for sys, _, s in view.items() if sys == "production")
        return cand / sum(s.count for _, _, s in view.items())


def units(n: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_fallback_copies_are_not_baseline_units():
    t = Traffic()
    alerts = t.split(iter(range(8)), dict.fromkeys(units(1000), 2), fail_every=4)
    assert t.event_share() < 0.45  # a split on events would say the candidate gets less
    assert alerts == []


def test_units_sending_many_queries_do_not_skew_the_split():
    heavy = [u for u in units(400, "h") if to_candidate("kai", u, 50)][:40]  # power users
    queries = dict.fromkeys(units(1000), 1) | dict.fromkeys(heavy, 40)
    t = Traffic()
    alerts = t.split(iter(range(8)), queries)
    assert t.event_share() > 0.6
    assert alerts == []


def test_a_weight_change_inside_a_window_is_not_a_mismatch():
    t = Traffic(weight=50)
    t.window(0, dict.fromkeys(units(1000), 1))
    t.weight = 75  # the Router moves on; the judged weight stays 50 in this stage 2
    for w in range(1, 8):
        t.window(w, dict.fromkeys(units(1000), 1))
    assert split_alerts(t.outputs) == []


def test_units_the_candidate_loses_are_caught():
    """Router at 50%, but a third of the candidate's units never arrive (40% observed)."""
    everyone = units(1500)
    lost = {u for u in everyone if to_candidate("kai", u, 50) and int(u[1:]) % 3 == 0}
    t = Traffic()
    alerts = t.split(iter(range(8)), {u: 2 for u in everyone if u not in lost})
    assert len(alerts) == 1
    assert alerts[0].observed == pytest.approx(0.4, abs=0.03) and alerts[0].threshold == 0.5


def test_one_check_per_window_however_many_partials():
    t = Traffic()
    queries = dict.fromkeys(units(300), 1)
    monitor_checks = []
    for w in range(6):
        for part in range(10):  # ten flushes per window
            t.window(w, {u: 1 for u in list(queries)[part::10]})
            monitor = t.stage2.monitors["kai"]
            monitor_checks.append(monitor.sample_ratio.checked)
    assert len(set(monitor_checks)) <= 6  # one new span per window, not one per flush


def test_a_unit_counts_once_over_the_span():
    """600 units active in each of 8 windows: the span holds 600 units, not 4,800."""
    t = Traffic()
    t.split(iter(range(8)), dict.fromkeys(units(600), 1))
    check = t.stage2.monitors["kai"].sample_ratio
    assert sum(len(u) for u in check.units.values()) == 600


def test_the_warning_stands_while_the_mismatch_lasts():
    """Once warned, no "recovered" however the later windows look; one alert."""
    everyone = units(1500)
    lost = {u for u in everyone if to_candidate("kai", u, 50) and int(u[1:]) % 3 == 0}
    t = Traffic()
    t.split(iter(range(4)), {u: 1 for u in everyone if u not in lost})
    t.split(iter(range(4, 12)), dict.fromkeys(everyone, 1))  # the lost units come back
    assert [a.kind for a in split_alerts(t.outputs)] == ["sample_ratio_mismatch"]


def test_a_persons_change_starts_a_new_span():
    """After a person sets the weight again, the old units are not evidence: no alert
    until the new span's own units show the mismatch, under a new id."""
    everyone = units(1500)
    lost = {u for u in everyone if to_candidate("kai", u, 50) and int(u[1:]) % 3 == 0}
    queries = {u: 1 for u in everyone if u not in lost}
    t = Traffic()
    t.split(iter(range(4)), queries)
    first = split_alerts(t.outputs)
    check = t.stage2.monitors["kai"].sample_ratio
    anchor = RolloutEvent(
        rollout="kai", type="weight_set", weight=50, actor="alice", ts=T0 + timedelta(hours=1)
    )
    state = RolloutState(rollout="kai", weight=50, phase=1)
    assert check.observe(t.stage2.views["kai"], state, anchor) == []
    assert check.incidents == [] and len(check.units[PLAN.roles.candidate]) == 0
    assert len(first) == 1


def test_a_sampled_span_keeps_units_exactly_below_its_bound():
    """With room for 64 units per system the span samples: all units below a hash bound."""
    t = Traffic()
    t.window(0, {"u0": 1})  # creates the monitor
    t.stage2.monitors["kai"].sample_ratio = SampleRatioCheck("kai", PLAN, WINDOW, capacity=64)
    t.split(iter(range(1, 8)), dict.fromkeys(units(1000), 1))
    check = t.stage2.monitors["kai"].sample_ratio
    level = check.units["production"].level
    assert level >= 3 and check.units["pipeline"].level == level
    for system, sample in check.units.items():
        served = [u for u in units(1000) if to_candidate("kai", u, 50) == (system == "production")]
        assert set(sample.hashes.tolist()) == {
            h for h in map(unit_hash, served) if h < sample.bound
        }


def test_the_budget_over_levels_sums_to_the_p_value():
    assert sum(alpha_at(0.01, level) for level in range(100_000)) == pytest.approx(0.01, rel=1e-4)


# ---------------------------------------------------------------- simulated rollouts
@pytest.mark.slow  # 100 rollouts, over 10 s: `make test`, not `make check`
def test_healthy_rollouts_warn_within_the_budget():
    """100 healthy rollouts of 30 minutes at 10 events/s, weights 25/50/75, looked at every
    window: at p_value 0.05, at most 5 warn (the bound holds for each rollout)."""
    outcomes = [
        run(f"healthy-{i}", w, w, events_per_s=10, minutes=30, seed=i, p_value=0.05)
        for i, w in enumerate([25, 50, 75] * 33 + [50])
    ]
    assert sum(o.warned is not None for o in outcomes) <= 5
    assert not any(o.recovered for o in outcomes)


def test_a_router_at_45_for_weight_50_is_caught_at_10_events_per_second():
    """40 rollouts: caught within 30 minutes in >= 90%, never "recovered"; the rule before
    (a chi-square on each window's units over 5 minutes) misses most of them."""
    outcomes = [run(f"broken-{i}", 50, 45, 10, minutes=30, seed=i) for i in range(40)]
    assert sum(o.warned is not None for o in outcomes) >= 36
    assert not any(o.recovered for o in outcomes)
    assert sum(o.before_warned is not None for o in outcomes) < 30


# ---------------------------------------------------------------- through the worker
@pytest.mark.timeout(240)
def test_the_worker_warns_once_and_status_shows_the_open_warning(kafka_settings, tmp_path):
    """Real broker and worker: the Router sends 40% of the units at weight 50."""
    settings = kafka_settings.model_copy(
        update={"window_seconds": 1, "lateness_seconds": 1, "flush_seconds": 0.5}
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        writer = RolloutWriter(settings)
        writer.append(RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1))
        writer.close()
        worker.wait_assigned()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        base = make_result(0, rollout="kai")
        results = [
            base.model_copy(
                update={
                    "event_id": make_result(i).event_id,
                    "unit_id": f"u{i}",
                    "system": "production" if to_candidate("kai", f"u{i}", 40) else "pipeline",
                    "ts": start + timedelta(seconds=i % 5, milliseconds=i % 1000),
                    "weight": 50,
                }
            )
            for i in range(2500)
        ]
        with Emitter(settings) as emitter:
            for r in sorted(results, key=lambda r: r.ts):
                assert emitter.emit(r)
            assert emitter.flush(30)

        def warned(status: dict) -> bool:
            control = (status.get("control") or {}).get("kai") or {}
            return "sample-ratio" in control.get("incidents", [])

        worker.wait(warned, timeout=90)
        values = read_values(settings.bootstrap_servers, settings.topics.alerts, 10, 3.0)
        split = [a for a in (decode(v, Alert) for v in values) if a.metric == "candidate_share"]
        assert [a.kind for a in split] == ["sample_ratio_mismatch"]
        assert split[0].observed == pytest.approx(0.4, abs=0.05) and split[0].threshold == 0.5
    finally:
        worker.stop()


def test_units_of_a_partition_that_lags_behind_count_in_windows_already_taken():
    """Partition 1 delivers its windows after partition 0 has moved the view two windows
    on: its units still join the span (a union, each once), so the check sees them all."""
    weight, traffic = 50, Traffic()
    lagging = PartitionAccumulator("results", 1, WINDOW, WINDOW, max_future=10**10)
    units = {0: [f"a{i}" for i in range(150)], 1: [f"b{i}" for i in range(150)]}
    runs = {0: traffic.acc, 1: lagging}
    for partition in (0, 1):  # partition 0's six windows first, then partition 1's
        acc = runs[partition]
        for window in range(6):
            for unit in units[partition]:
                system = "production" if to_candidate("kai", unit, weight) else "pipeline"
                acc.add(traffic.offset, traffic.result(window, unit, system), now=T0.timestamp())
            for partial in acc.drain():
                traffic.stage2.apply(partial)
    check = traffic.stage2.monitors["kai"].sample_ratio
    assert sum(len(s) for s in check.units.values()) == 300  # before: 150 of partition 0
