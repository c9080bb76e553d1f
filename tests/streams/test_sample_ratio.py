"""The sample ratio mismatch (SRM) check: units, not events; fallback copies left out; one
check per window. Simulated healthy rollouts warn at the stated rate or less (where a
chi-square on events, the check before, warns far more often), a real mismatch is caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from producers.router import to_candidate
from rollout.state import RolloutState, fold
from schemas.events import RolloutEvent
from schemas.internal import Partial, WindowStatsState
from schemas.plan import SampleRatio, load_plan
from schemas.stats import split_p_value
from streams.stage2 import Stage2
from streams.windows import PartitionAccumulator, to_datetime
from tests.streams.conftest import T0, make_result

WINDOW = 10


def state(rollout: str, weight: int) -> RolloutState:
    started = RolloutEvent(rollout=rollout, type="phase_started", weight=weight, phase=1, ts=T0)
    return fold([started], rollout)  # type: ignore[return-value]


def stage2(weight: int, p_value: float = 0.001, span: int = 5 * WINDOW) -> Stage2:
    plan = load_plan().model_copy(
        update={"sample_ratio": SampleRatio(p_value=p_value, min_samples=200, window_seconds=span)}
    )
    states: dict[str, RolloutState] = {}  # one log per rollout, as the worker follows it
    return Stage2(
        WINDOW, 3600, plan, state_of=lambda r: states.setdefault(r, state(r, weight))
    )


def srm_alerts(outputs: list) -> list:
    return [o for o in outputs if getattr(o, "kind", None) == "sample_ratio_mismatch"]


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
def simulate(rollout: str, weight: int, windows: int, lost: float, seed: int):
    """Per window and system: (events, distinct units) of 2,000 units whose query rates
    are heavy-tailed (log-normal, about 3 per window, some units far more), routed by the
    Router's hash; ``lost`` of the candidate's units never arrive."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(seed)
    names = [f"{rollout}-u{i}" for i in range(2000)]
    cand = np.array([to_candidate(rollout, u, weight) for u in names])
    kept = ~(cand & (rng.random(len(names)) < lost))
    rate = rng.lognormal(mean=0.3, sigma=1.2, size=len(names))
    for _ in range(windows):
        k = rng.poisson(rate) * kept
        yield [(int(k[mask].sum()), int((k[mask] > 0).sum())) for mask in (cand, ~cand)]


def run(rollout: str, weight: int, lost: float, seed: int, windows: int = 14, p: float = 0.01):
    """One simulated rollout through Stage 2; (SRM alerts, checks, event-test rejections)."""
    s2 = stage2(weight, p_value=p)
    alerts, event_rejections, span = 0, 0, 5
    history = []
    for w, split in enumerate(simulate(rollout, weight, windows, lost, seed)):
        history.append(split)
        for system, (events, distinct) in zip(("production", "pipeline"), split, strict=True):
            stats = WindowStatsState(  # all successes: no rollback stops the split
                count=events, successes=events, weights={weight: events}, units={weight: distinct}
            )
            partial = Partial(
                rollout=rollout,
                system=system,
                window_start=to_datetime(int(T0.timestamp()) + w * WINDOW),
                window_seconds=WINDOW,
                source_topic="results",
                partition=0,
                first_offset=w,
                last_offset=w,
                committed_offset=w + 1,
                stats=stats,
            )
            alerts += len(srm_alerts(s2.apply(partial)))
        if w >= 2:  # the check before: a chi-square on the span's events, same windows
            closed = history[max(0, w - 1 - span) : w - 1]
            c = sum(cand for (cand, _), _ in closed)
            total = c + sum(base for _, (base, _) in closed)
            event_rejections += (split_p_value(c, total, weight / 100) or 1) < p
    return alerts, windows - 2, event_rejections


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
