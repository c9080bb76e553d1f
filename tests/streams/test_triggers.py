"""Rollback triggers in stage 2: once per incident, the right step back, recovery, SRM."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from rollout.state import RolloutState, fold
from schemas.events import Alert, RolloutEvent
from schemas.plan import Plan, load_plan
from streams.stage2 import Stage2, control_json
from streams.triggers import GRACE, WORKER, Decision
from streams.windows import PartitionAccumulator
from tests.streams.conftest import T0, make_result

ROLLOUT = "kai"


def fixed_limits(plan: Plan) -> Plan:
    """``plan`` without its guardrails: the seed's fixed-limit triggers alone."""
    return plan.model_copy(update={"rollback": [t for t in plan.rollback if not t.guardrail]})


class Harness:
    """Stage 2 on the default plan, fed batches of results through real partials."""

    def __init__(self, phase: int = 1, weight: int = 50, plan: Plan | None = None) -> None:
        self.offset, self.rng, self.out, self.partials = 0, random.Random(1), [], []
        self.state: RolloutState | None = fold(
            [self.event("phase_started", weight=weight, phase=phase, actor="alice")], ROLLOUT
        )
        self.plan = plan or fixed_limits(load_plan())
        self.stage2 = Stage2(10, 3600, self.plan, state_of=lambda r: self.state, clock=self.now)
        self.acc = PartitionAccumulator("results", 0, 10, 10, max_future=10**10)

    def now(self) -> float:
        """The clock: event time and read time advance together, 10 ms an event."""
        return T0.timestamp() + self.offset * 0.01

    def event(self, type: str, **fields) -> RolloutEvent:
        """A rollout event stamped now."""
        ts = T0 + timedelta(seconds=self.offset * 0.01)
        return RolloutEvent(rollout=ROLLOUT, type=type, ts=ts, **fields)

    def batch(self, n: int, make: Callable[[int], dict], **options) -> list:
        """:meth:`made`'s results, read now; what stage 2 raised on them."""
        results = self.made(n, make, **options)
        return self.send(results, self.offset - len(results))

    def made(
        self,
        n: int,
        make: Callable[[int], dict],
        system: str = "production",
        baseline: Callable[[int], dict] | None = None,
    ) -> list:
        """``n`` candidate results (or of ``system``), plus the baseline's share if the
        weight asks for one (so the split matches the weight), made by ``baseline``
        (default: all successes at 100 ms), stamped now."""
        weight = self.state.weight if self.state else 50
        results = [self._result(make, system, weight) for _ in range(n)]
        if system == "production" and 0 < weight < 100:
            base = baseline or (lambda i: {"success": True, "latency_ms": 100.0})
            share = n * (100 - weight) // weight
            results += [self._result(base, "pipeline", weight) for _ in range(share)]
        self.last = results
        return results

    def _result(self, make: Callable[[int], dict], system: str, weight: int):
        r = make_result(
            self.offset,
            system=system,
            seconds=self.offset * 0.01,
            rollout=ROLLOUT,
            **make(self.offset),
        ).model_copy(update={"weight": weight})
        self.offset += 1
        return r

    def send(self, results: list, first: int) -> list:
        for k, r in enumerate(results):
            self.acc.add(first + k, r, now=self.now())
        self.acc.committed(first)
        partials = self.acc.drain()
        self.partials += partials
        new = [o for p in partials for o in self.stage2.apply(p)]
        self.out += new
        return new

    def alone(self, n: int, make: Callable[[int], dict]) -> list:
        """``n`` candidate results and no baseline's, read now; what stage 2 raised."""
        results = [self._result(make, "production", 50) for _ in range(n)]
        return self.send(results, self.offset - n)

    def success(self, rate: float) -> Callable[[int], dict]:
        return lambda i: {"success": self.rng.random() < rate, "latency_ms": 100.0}

    def latency(self, ms: float) -> Callable[[int], dict]:
        return lambda i: {"latency_ms": self.rng.lognormvariate(0, 0.35) * ms}

    def alerts(self, kind: str | None = None) -> list[Alert]:
        return [o for o in self.out if isinstance(o, Alert) and kind in (None, o.kind)]

    def events(self) -> list[RolloutEvent]:
        return [o for o in self.out if isinstance(o, RolloutEvent)]

    def apply(self, event: RolloutEvent) -> None:
        self.state = self.state.apply(event)


def test_emergency_fires_once_with_a_rollback_to_zero():
    h = Harness()
    for _ in range(20):
        h.batch(100, h.success(0.97))
    assert h.out == []
    for _ in range(20):
        h.batch(100, h.success(0.80))
    (alert,) = h.alerts()
    (event,) = h.events()
    assert (alert.kind, alert.metric, alert.severity) == (
        "emergency_rollback",
        "success_rate",
        "critical",
    )
    assert alert.observed < 0.9 == alert.threshold and alert.samples >= 100
    assert (alert.action.weight_from, alert.action.weight_to) == (50, 0)
    assert (event.type, event.weight, event.phase, event.actor) == ("rollback", 0, 0, WORKER)
    assert "success-emergency" in event.reason
    assert control_json(h.stage2, ROLLOUT)["incidents"] == ["success-emergency"]


def test_a_rollback_alert_names_where_the_candidates_failures_concentrate():
    h = Harness()

    def german_failures(i: int) -> dict:
        de = i % 2 == 1
        return {"success": not de or h.rng.random() < 0.6, "segment": "de" if de else "en"}

    for _ in range(20):
        h.batch(100, german_failures)
    (alert,) = h.alerts()
    dims = [(c.dimension, c.value) for c in alert.contributors]
    assert dims == [("error_type", "Timeout"), ("segment", "de")]
    de = alert.contributors[1]
    assert de.candidate >= 20 and (de.baseline, de.expected) == (0, 0.0)  # the baseline: no de


def test_a_replayed_partial_is_not_evidence_twice():
    h = Harness()
    h.batch(100, h.success(0.5))
    score = h.stage2.monitors[ROLLOUT].cusums["success-emergency"].score
    assert score > 0
    h.send(h.last, h.offset - len(h.last))  # the same offsets and events (a restart's replay)
    assert h.stage2.monitors[ROLLOUT].cusums["success-emergency"].score == score


def test_without_a_known_weight_it_alerts_but_does_not_roll_back():
    h = Harness()
    h.state = None
    for _ in range(10):
        h.batch(100, h.success(0.5))
    assert [a.kind for a in h.alerts()] == ["emergency_rollback"]
    assert h.alerts()[0].action is None and h.events() == []


def test_partial_steps_back_one_phase_and_recovers_when_latency_is_back():
    h = Harness(phase=3, weight=100)
    for _ in range(10):
        h.batch(100, h.latency(100))
    for _ in range(10):
        h.batch(100, h.latency(220))  # P95 = 220 * 1.78 = 390 ms over the 250 ms limit
    (alert,) = h.alerts()
    (event,) = h.events()
    assert (alert.kind, alert.metric, alert.severity) == (
        "partial_rollback",
        "p95_latency_ms",
        "warning",
    )
    assert alert.observed > 250 == alert.threshold
    assert (event.weight, event.phase) == (75, 2)
    h.apply(event)  # the worker's own step back keeps the incident open
    for _ in range(20):
        h.batch(100, h.latency(220))
    assert len(h.alerts()) == 1
    for _ in range(30):
        h.batch(100, h.latency(100))
    assert [a.kind for a in h.alerts()] == ["partial_rollback", "recovered"]
    assert h.alerts()[1].alert_id != alert.alert_id


def test_partial_in_the_first_phase_has_nowhere_to_step_back():
    h = Harness(phase=1, weight=50)
    for _ in range(10):
        h.batch(100, h.latency(220))
    (alert,) = h.alerts()
    assert alert.kind == "gate_failed" and alert.action is None and h.events() == []


def test_a_critical_error_is_an_emergency_and_clears_after_clean_events():
    h = Harness()
    h.batch(100, h.success(1.0))
    h.batch(10, lambda i: {"success": i % 10 != 0, "critical": True})
    assert [a.kind for a in h.alerts()] == ["critical_error"]
    assert h.events()[0].weight == 0
    h.batch(100, h.success(1.0))
    assert [a.kind for a in h.alerts()] == ["critical_error", "recovered"]


def test_a_humans_change_resets_the_evidence_the_workers_does_not():
    h = Harness()
    h.batch(300, h.success(0.85))
    monitor = h.stage2.monitors[ROLLOUT]
    assert monitor.cusums["success-emergency"].score > 0
    h.apply(h.event("rollback", weight=20, actor=WORKER))
    h.batch(1, h.success(1.0))
    assert monitor.cusums["success-emergency"].score > 0
    h.apply(h.event("weight_set", weight=10, actor="alice"))
    h.batch(1, h.success(1.0))
    assert monitor.cusums["success-emergency"].score == 0 and monitor.samples == 1


@pytest.mark.parametrize(("share", "fires"), [(0.5, False), (0.6, True)])
def test_sample_ratio_mismatch_warns_once(share, fires):
    h = Harness()
    ok = h.success(1.0)
    for _ in range(5):
        cand = [h._result(ok, "production", 50) for _ in range(int(1000 * share))]
        base = [h._result(ok, "pipeline", 50) for _ in range(int(1000 * (1 - share)))]
        h.send(cand + base, h.offset - len(cand) - len(base))
    kinds = [a.kind for a in h.alerts()]
    assert kinds == (["sample_ratio_mismatch"] if fires else [])
    if fires:
        alert = h.alerts()[0]
        assert alert.severity == "warning" and alert.threshold == 0.5
        assert alert.observed == pytest.approx(share, abs=0.01)


def test_auto_advance_starts_the_next_phase_once_every_gate_passes():
    h = Harness()
    phases = [
        {"name": "a", "weight": 50, "min_samples": 200,
         "advance": [{"metric": "success_rate", "min": 0.9}]},
        {"name": "b", "weight": 100},
    ]  # fmt: skip
    h.stage2.plan = Plan.model_validate({"phases": phases, "auto_advance": True})
    h.batch(100, h.success(1.0))
    assert h.stage2.gates(ROLLOUT).outcome == "inconclusive"  # 100 of 200 samples
    assert h.stage2.advance(ROLLOUT) is None
    h.batch(400, h.success(0.99))
    assert h.stage2.gates(ROLLOUT).outcome == "inconclusive"  # judged at the window's end
    h.batch(600, h.success(0.99))  # into the next window: the first one's end is a look
    assert h.stage2.gates(ROLLOUT).outcome == "pass"
    event = h.stage2.advance(ROLLOUT)
    assert (event.type, event.phase, event.weight, event.actor) == ("phase_started", 2, 100, WORKER)
    assert h.stage2.advance(ROLLOUT).event_id == event.event_id  # asked again: the same event
    h.stage2.plan = h.stage2.plan.model_copy(update={"auto_advance": False})
    assert h.stage2.advance(ROLLOUT) is None


# ---------------------------------------------------------------- a rollback holds
def outage(h: Harness) -> Callable[[int], dict]:
    """Every candidate request times out: a failure after 2 s."""
    return lambda i: {"success": False, "latency_ms": 2000.0 * h.rng.uniform(0.98, 1.02)}


def test_an_emergency_and_a_step_back_in_one_evaluation_end_at_zero():
    """Success and latency triggers fire together: the step back acts on the emergency's 0."""
    h = Harness(phase=3, weight=100)
    for _ in range(10):
        h.batch(100, h.success(0.98))
    for _ in range(20):  # the log does not return the worker's events (it lags)
        h.batch(100, outage(h))
    final = fold([*h.state.history, *h.events()], ROLLOUT)
    assert (final.weight, final.phase) == (0, 0)
    assert [(e.weight, e.phase) for e in h.events()] == [(0, 0)]
    assert {a.kind for a in h.alerts()} == {"emergency_rollback", "gate_failed"}
    for event in h.events():
        h.apply(event)
    for _ in range(20):  # still failing, and after the log has returned it
        h.batch(100, outage(h))
    assert [(e.weight, e.phase) for e in h.events()] == [(0, 0)]


def test_auto_advance_never_undoes_the_workers_rollback():
    plan = fixed_limits(load_plan()).model_copy(update={"auto_advance": True})
    h = Harness(phase=1, weight=50, plan=plan)
    h.apply(h.event("rollback", weight=0, phase=0, actor=WORKER))
    h.apply(h.event("phase_started", weight=50, phase=1, actor=WORKER))  # not a person
    h.apply(h.event("rollback", weight=0, phase=0, actor=WORKER))
    assert h.state.held_by_worker
    assert h.stage2.advance(ROLLOUT) is None


def replay(h: Harness) -> list:
    """A restarted worker: a new stage 2 folds every partial again on today's log."""
    fresh = Stage2(10, 3600, h.plan, state_of=lambda r: h.state)
    return [o for p in h.partials for o in fresh.apply(p)]


def test_a_replay_re_derives_the_same_ids_and_repeats_nothing_in_the_log():
    h = Harness(phase=2, weight=75)
    for _ in range(20):
        h.batch(100, h.success(0.80))
    (alert,), (event,) = h.alerts(), h.events()
    assert [(o.alert_id if isinstance(o, Alert) else o.event_id) for o in replay(h)] == [
        alert.alert_id,
        event.event_id,
    ]  # the log has not returned the rollback: the same alert and rollback again
    h.apply(event)
    assert replay(h) == []  # once it is in the log: restored silently


def test_a_restarted_worker_never_acts_on_evidence_from_before_a_persons_change():
    h = Harness(phase=1, weight=50)
    for _ in range(20):
        h.batch(100, h.success(0.80))
    for event in h.events():
        h.apply(event)
    h.batch(1, h.success(1.0))
    h.apply(h.event("phase_started", weight=50, phase=1, actor="alice"))  # a person restarts
    assert replay(h) == []
    for _ in range(5):
        h.batch(100, h.success(0.99))
    assert replay(h) == []
    assert [e.weight for e in h.events()] == [0]


def test_a_lagging_worker_never_counts_the_old_phases_events_read_after_a_persons_change():
    """Stage 1 reads, after a person restarted the rolled-back rollout, failures made
    before it (a worker behind its topic): they are not evidence against her phase."""
    h = Harness(phase=1, weight=50)
    for _ in range(20):
        h.batch(100, h.success(0.80))
    (rollback,) = h.events()
    old = [h.made(100, h.success(0.80)) for _ in range(20)]  # made before the rollback
    h.apply(rollback)
    h.apply(h.event("phase_started", weight=50, phase=1, actor="alice"))
    h.offset += 100  # read a second after alice's restart
    for results in old:
        h.send(results, h.offset)
        h.offset += len(results)
    assert h.events() == [rollback]
    for _ in range(20):  # the candidate fails as badly after her restart: rolled back
        h.batch(100, h.success(0.80))
    assert [e.weight for e in h.events()] == [0, 0]


def stopped(h: Harness) -> Decision:
    """Both systems healthy, then the candidate alone fails until a trigger fires: the
    baseline's last events were read before the firing ones, and no partial comes."""
    for _ in range(20):
        h.batch(100, h.success(0.97))
    monitor = h.stage2.monitors[ROLLOUT]
    while not monitor.pending:
        assert h.alone(50, h.success(0.3)) == []
    (decision,) = monitor.pending
    return decision


def test_a_fired_trigger_goes_out_on_the_timer_once_traffic_stops():
    """The decision waits for the baseline's events read as late; none come: stage 2's
    timer releases it once :data:`GRACE` seconds of its clock have passed, once."""
    h = Harness()
    stopped(h)
    h.offset += int((GRACE - 0.5) * 100)  # 9.5 s of silence
    assert h.stage2.release() == []
    h.offset += 50
    fired = h.stage2.release()
    assert [type(o).__name__ for o in fired] == ["Alert", "RolloutEvent"]
    assert fired[0].kind == "emergency_rollback" and fired[1].weight == 0
    assert h.stage2.release() == []
    h.out += fired
    for _ in range(3):  # traffic again: the incident stays open and silent
        h.batch(100, h.success(0.3))
    assert h.out == fired


def test_the_timer_gives_the_alert_the_next_partial_would_have_given():
    """Released by the timer, or by a baseline's partial read as late: the same alert."""
    timer, partial = Harness(), Harness()
    partial.state = timer.state  # the same anchor: the same ids
    stopped(timer), stopped(partial)
    for h in (timer, partial):
        h.offset += int(GRACE * 100)
    by_timer = timer.stage2.release()
    by_partial = partial.batch(100, partial.success(0.97), system="pipeline")
    assert by_timer and [o.model_dump(exclude={"ts"}) for o in by_timer] == [
        o.model_dump(exclude={"ts"}) for o in by_partial
    ]


def test_a_baseline_degradation_as_traffic_stops_goes_out_on_the_timer():
    """The roles swapped: the baseline alone fails last, its alert waits for the
    candidate's events read as late, and the timer sends it."""
    h = Harness()
    for _ in range(20):
        h.batch(100, h.success(0.97))
    monitor = h.stage2.monitors[ROLLOUT]
    while not monitor.degraded:
        assert h.batch(50, h.success(0.3), system="pipeline") == []
    h.offset += int(GRACE * 100)
    (alert,) = h.stage2.release()
    assert (alert.kind, alert.system, alert.attribution) == (
        "baseline_degraded",
        "pipeline",
        "baseline-only",
    )
    assert monitor.due is None and h.stage2.release() == []


def test_critical_errors_above_n_count_across_batches():
    """``above = 2``: ten critical errors, one a batch, fire once, at the third."""
    plan = load_plan()
    critical = plan.rollback[1].model_copy(update={"above": 2.0})
    plan = plan.model_copy(update={"rollback": [critical]})
    h = Harness(plan=plan)
    fired_at = []
    for k in range(10):
        if h.batch(50, lambda i: {"success": i % 50 != 0, "critical": True}):
            fired_at.append(k)
    assert fired_at == [2]
    (alert,) = h.alerts()
    assert alert.kind == "critical_error" and alert.observed == 3


def test_a_latency_alert_shows_the_quantile_of_the_events_that_fired_it():
    """In a window of fast events the slow run's P95 is the run's, not the window's."""
    h = Harness(phase=3, weight=100)
    for _ in range(96):  # 960 events at ~100 ms in the first 10 s window
        h.batch(10, h.latency(100))
    for _ in range(4):  # then 10 events at a time at ~400 ms, still in that window
        h.batch(10, lambda i: {"latency_ms": 400.0 * h.rng.uniform(0.95, 1.05)})
    (alert,) = h.alerts("partial_rollback")
    window = h.stage2.views[ROLLOUT].window("production", int(T0.timestamp()))
    assert window.latency_quantile(0.95) < 250  # the window as a whole looks fine
    assert 380 <= alert.observed <= 420 * 1.01
