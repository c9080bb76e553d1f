"""The rollout fold: pure, order-sensitive, idempotent for repeated deliveries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rollout.state import RolloutState, fold, fold_all
from schemas.events import RolloutEvent


def ev(type_: str, weight: int | None = None, phase: int | None = None, rollout: str = "r"):
    return RolloutEvent(rollout=rollout, type=type_, weight=weight, phase=phase, actor="test")


def test_phases_and_rollback():
    log = [
        ev("phase_started", 50, 1),
        ev("decision", None, None),
        ev("phase_started", 75, 2),
        ev("rollback", 50),
        ev("rollback"),
    ]
    states = [fold(log[:n], "r") for n in range(len(log) + 1)]
    assert [(s.weight, s.phase) for s in states] == [
        (0, 0),
        (50, 1),
        (50, 1),
        (75, 2),
        (50, 2),
        (0, 2),  # a rollback without a weight is an emergency rollback to 0
    ]
    assert states[-1].last is log[-1]
    assert states[-1].updated_at == log[-1].ts


def test_decision_with_weight_advances():
    assert fold([ev("weight_set", 50), ev("decision", 75, 2)], "r").weight == 75


def test_other_rollouts_and_repeats_are_ignored():
    set50 = ev("weight_set", 50)
    log = [set50, ev("weight_set", 100, rollout="other"), ev("weight_set", 75), set50]
    state = fold(log, "r")
    assert state.weight == 75  # the repeated delivery of set50 does not undo the 75
    assert len(state.history) == 2
    assert fold_all(log)["other"].weight == 100


def test_initial_weight_is_the_default_before_any_event():
    assert fold([], "r", initial_weight=10) == RolloutState("r", weight=10)


@given(st.lists(st.tuples(st.sampled_from(["weight_set", "rollback"]), st.integers(0, 100))))
def test_weight_is_the_last_one_set(steps):
    log = [ev(t, w) for t, w in steps]
    expected = steps[-1][1] if steps else 0
    assert fold(log, "r").weight == expected
    # folding is associative over log prefixes: apply-one-by-one == fold
    state = RolloutState("r")
    for e in log:
        state = state.apply(e)
    assert state == fold(log, "r")
