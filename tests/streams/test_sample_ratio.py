"""The sample ratio mismatch (SRM) check: units, not events; fallback copies left out; one
check per window. Simulated healthy rollouts warn at the stated rate or less (where a
chi-square on events, the check before, warns far more often), a real mismatch is caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from phasegate.testing.sample_ratio import WINDOW, run, srm_alerts, stage2
from producers.router import to_candidate
from streams.windows import PartitionAccumulator
from tests.streams.conftest import T0, make_result


# ---------------------------------------------------------------- through stage 1 and 2
class Traffic:
    """Results through a real PartitionAccumulator into Stage 2, one window at a time."""

    def __init__(self, weight: int = 50, rollout: str = "kai") -> None:
        self.rollout, self.weight = rollout, weight
        self.stage2 = stage2(weight)
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
        return srm_alerts(self.outputs)

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
    assert srm_alerts(t.outputs) == []


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
            monitor_checks.append(monitor.split_checked)
    assert len(set(monitor_checks)) <= 6  # one new span per window, not one per flush


# ---------------------------------------------------------------- simulated rollouts
def test_healthy_rollouts_warn_at_the_stated_rate_or_less():
    """200 healthy rollouts (2,400 checks at p_value 0.01, weights 25/50/75)."""
    alerts = checks = event_rejections = 0
    for i in range(200):
        a, c, e = run(f"healthy-{i}", (25, 50, 75)[i % 3], lost=0.0, seed=i)
        alerts, checks, event_rejections = alerts + a, checks + c, event_rejections + e
    assert alerts <= 0.01 * checks  # the stated rate: p_value per check
    assert event_rejections > 0.1 * checks  # events are over-dispersed: the old check's rate


def test_a_real_mismatch_is_caught_in_most_rollouts():
    """Router at 50%, a third of the candidate's units lost: 40% observed."""
    caught = sum(run(f"broken-{i}", 50, lost=1 / 3, seed=i, p=0.001)[0] > 0 for i in range(50))
    assert caught >= 45
