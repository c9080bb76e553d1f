"""The steering rules (pure): which actions a plan allows and the events they become."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.state import RolloutState
from rollout.steering import (
    Refused,
    Request,
    ceiling,
    decide,
    next_weight,
    phase_of,
    quick_weights,
    rollback_phases,
    step_back,
)
from schemas.events import RolloutEvent
from schemas.plan import Phase, Plan, load_plan
from tests.rollout import TEN_TO_HUNDRED

TEN = load_plan(TEN_TO_HUNDRED)  # 10, 25, 50, 100
SEED = load_plan()  # 50, 75, 100, 100: two phases at 100


def plan_of(weights: list[int]) -> Plan:
    return Plan(phases=[Phase(name=f"p{i}", weight=w) for i, w in enumerate(weights, 1)])


weight_lists = st.lists(st.integers(1, 100), min_size=1, max_size=6).map(sorted)


def at(weight: int, phase: int = 0) -> RolloutState:
    state = RolloutState(rollout="kai")
    return state.apply(RolloutEvent(rollout="kai", type="weight_set", weight=weight, phase=phase))


def ask(action: str, **fields: Any) -> Request:
    return Request(action, fields.pop("actor", "ana"), **fields)


def passing(phase: int) -> Any:
    return lambda: {"phase": phase, "outcome": "pass"}


def walk(plan: Plan) -> list[tuple[int | None, int | None]]:
    """Start, then promote (gates passing) until the plan refuses: (phase, weight) each."""
    state = RolloutState(rollout="kai").apply(decide(plan, RolloutState("kai"), ask("start")))
    seen = [(state.phase, state.weight)]
    while True:
        try:
            event = decide(plan, state, ask("promote"), passing(state.phase))
        except Refused as exc:
            assert str(exc) == f"already in the plan's last phase ({len(plan.phases)})"
            return seen
        state = state.apply(event)
        seen.append((event.phase, event.weight))


def test_start_and_promote_walk_every_phase_of_the_plan() -> None:
    assert walk(TEN) == [(1, 10), (2, 25), (3, 50), (4, 100)]
    assert walk(SEED) == [(1, 50), (2, 75), (3, 100), (4, 100)]


def test_start_only_when_not_running_and_promote_only_when_running() -> None:
    event = decide(TEN, at(0), ask("start"))
    assert (event.type, event.phase, event.weight, event.reason) == (
        "phase_started",
        1,
        10,
        "start: canary",
    )
    assert decide(TEN, at(50), ask("start")).weight == 10, "a weight set directly: phase 1"
    with pytest.raises(Refused, match="kai is running phase 2; use promote, hold or rollback"):
        decide(TEN, at(25, 2), ask("start"))
    with pytest.raises(Refused, match="kai is not running; start begins phase 1"):
        decide(TEN, at(50), ask("promote", force=True, reason="x"))


def test_promote_needs_the_running_phases_gates_to_pass_or_a_forced_reason() -> None:
    state = at(25, 2)
    for gates, outcome in [
        (lambda: None, "not judged yet"),
        (lambda: {"phase": 2, "outcome": "inconclusive"}, "inconclusive"),
        (lambda: {"phase": 2, "outcome": "fail"}, "fail"),
        (passing(1), "not judged yet"),  # the worker's report of an earlier phase
    ]:
        with pytest.raises(Refused, match=f"the gates of phase 2 are {outcome}; promote when"):
            decide(TEN, state, ask("promote"), gates)
    event = decide(TEN, state, ask("promote"), passing(2))
    assert (event.phase, event.weight, event.reason) == (3, 50, "go: every gate of phase 2 passed")
    with pytest.raises(Refused, match="overriding the gates needs a reason"):
        decide(TEN, state, ask("promote", force=True, reason="  "))

    def unreadable() -> None:
        raise Refused("the gates cannot be read: no worker")

    with pytest.raises(Refused, match="the gates cannot be read"):
        decide(TEN, state, ask("promote"), unreadable)
    forced = decide(TEN, state, ask("promote", force=True, reason="known flake"), unreadable)
    assert (forced.phase, forced.weight, forced.reason) == (3, 50, "known flake")


def test_set_weight_one_phase_up_at_most_and_down_freely() -> None:
    event = decide(TEN, at(10, 1), ask("set_weight", weight=25, reason="go"))
    assert (event.type, event.weight, event.actor, event.reason) == ("weight_set", 25, "ana", "go")
    assert decide(TEN, at(10, 1), ask("set_weight", weight=20)).reason == "weight 10% -> 20%"
    assert decide(TEN, at(100, 4), ask("set_weight", weight=30)).weight == 30
    assert decide(TEN, at(0), ask("set_weight", weight=0)).weight == 0, "nothing to roll back"
    zero = decide(TEN, at(50, 3), ask("set_weight", weight=0, confirm=True, reason="errors"))
    assert zero.weight == 0


@pytest.mark.parametrize(
    ("plan", "weight", "fields", "message"),
    [
        (TEN, 10, {"weight": 50}, "from 10% the next step is 25%, not 50%"),
        (TEN, 30, {"weight": 100}, "from 30% the next step is 50%, not 100%"),
        (SEED, 50, {"weight": 100}, "from 50% the next step is 75%, not 100%"),
        (plan_of([10, 25, 50]), 50, {"weight": 60}, "from 50% no phase of the plan is higher"),
        (TEN, 10, {"weight": 101}, "weight must be from 0 to 100, not 101"),
        (TEN, 10, {"weight": -5}, "weight must be from 0 to 100, not -5"),
        (TEN, 10, {"weight": 62.5}, "weight must be a whole number from 0 to 100, not 62.5"),
        (TEN, 10, {"weight": "75"}, "weight must be a whole number from 0 to 100, not '75'"),
        (TEN, 10, {"weight": True}, "weight must be a whole number"),
        (TEN, 10, {}, "weight must be a whole number from 0 to 100, not None"),
        (TEN, 10, {"weight": 0, "reason": "x"}, "a rollback needs confirmation"),
        (TEN, 10, {"weight": 0, "confirm": True}, "a rollback needs a reason"),
    ],
)  # fmt: skip
def test_set_weight_refusals_say_why(
    plan: Plan, weight: int, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(")", r"\)")):
        decide(plan, at(weight, 1), ask("set_weight", **fields))


def test_hold_needs_a_reason_and_keeps_weight_and_phase() -> None:
    with pytest.raises(Refused, match="a hold needs a reason"):
        decide(TEN, at(25, 2), ask("hold"))
    hold = decide(TEN, at(25, 2), ask("hold", reason="waiting for more feedback"))
    assert (hold.type, hold.weight, hold.phase) == ("decision", None, None)
    assert at(25, 2).apply(hold).weight == 25


def test_rollback_to_zero_or_to_an_earlier_phase_with_less_weight() -> None:
    with pytest.raises(Refused, match="a rollback needs confirmation"):
        decide(TEN, at(50, 3), ask("rollback", reason="errors"))
    with pytest.raises(Refused, match="a rollback needs a reason"):
        decide(TEN, at(50, 3), ask("rollback", confirm=True))
    back = decide(TEN, at(50, 3), ask("rollback", confirm=True, reason="errors"))
    assert (back.type, back.weight, back.phase) == ("rollback", 0, 0)
    partial = decide(TEN, at(100, 4), ask("rollback", to_phase=2, confirm=True, reason="p95"))
    assert (partial.type, partial.weight, partial.phase) == ("rollback", 25, 2)
    for state, to_phase, message in [
        (at(50, 3), 3, r"allowed: 1, 2\), not phase 3 \(50%\)"),
        (at(50, 3), 4, r"not phase 4"),
        (at(20, 3), 2, r"less weight than 20% \(phase 3 now; allowed: 1\), not phase 2 \(25%\)"),
        (at(100, 4), 0, "the phase to roll back to must be from 1 to 4, not 0"),
        (at(100, 4), "2", "the phase to roll back to must be a whole number"),
    ]:
        with pytest.raises(Refused, match=message):
            decide(TEN, state, ask("rollback", to_phase=to_phase, confirm=True, reason="x"))


def test_two_phases_at_100_step_back_past_the_equal_one() -> None:
    assert [step_back(SEED, n) for n in (4, 3, 2, 1, 0)] == [2, 2, 1, None, None]
    assert [step_back(TEN, n) for n in (4, 3, 2, 1)] == [3, 2, 1, None]
    assert rollback_phases(SEED, at(100, 4)) == [1, 2], "phase 3 has no less weight"
    with pytest.raises(Refused, match=r"allowed: 1, 2\), not phase 3 \(100%\)"):
        decide(SEED, at(100, 4), ask("rollback", to_phase=3, confirm=True, reason="x"))


def test_unknown_action_and_invalid_actor() -> None:
    with pytest.raises(Refused, match="unknown action 'jump'"):
        decide(TEN, at(50), ask("jump"))
    with pytest.raises(Refused, match="actor"):
        decide(TEN, at(50), ask("hold", actor="x" * 300, reason="r"))


def test_weights_for_the_page() -> None:
    assert quick_weights(TEN) == [0, 10, 25, 50, 100]
    assert quick_weights(SEED) == [0, 50, 75, 100]
    assert [ceiling(TEN, w) for w in (0, 10, 11, 25, 50, 100)] == [10, 25, 25, 50, 100, 100]
    assert [phase_of(TEN, w) for w in (0, 9, 10, 24, 25, 99, 100)] == [0, 0, 1, 1, 2, 3, 4]
    assert [phase_of(SEED, w) for w in (49, 50, 75, 100)] == [0, 1, 2, 3]


@given(weight_lists, st.integers(0, 100), st.integers(-50, 150), st.booleans())
def test_set_weight_never_goes_more_than_one_phase_up(
    weights: list[int], current: int, wanted: int, confirm: bool
) -> None:
    plan = plan_of(weights)
    request = ask("set_weight", weight=wanted, confirm=confirm, reason="r")
    try:
        event = decide(plan, at(current, 1), request)
    except Refused:
        step = next_weight(plan, current)
        assert (
            not 0 <= wanted <= 100
            or (wanted > current and (step is None or wanted > step))
            or (wanted == 0 and current > 0 and not confirm)
        )
    else:
        assert event.weight == wanted
        if wanted > current:
            assert any(w >= wanted for w in weights), "above every phase"
            assert not any(current < w < wanted for w in weights), "a phase skipped"


@given(weight_lists, st.data())
def test_a_rollback_never_raises_the_weight(weights: list[int], data: st.DataObject) -> None:
    plan = plan_of(weights)
    phase = data.draw(st.integers(0, len(weights)))
    weight = data.draw(st.integers(0, 100))
    to_phase = data.draw(st.none() | st.integers(1, len(weights)))
    request = ask("rollback", to_phase=to_phase, confirm=True, reason="r")
    try:
        event = decide(plan, at(weight, phase), request)
    except Refused:
        assert to_phase is not None and to_phase not in rollback_phases(plan, at(weight, phase))
        return
    assert event.weight is not None and (event.weight < weight or event.weight == 0)
    assert event.phase == (to_phase or 0)
    if to_phase is not None:
        assert to_phase < phase
    partial = step_back(plan, phase)
    if partial is not None and weight == weights[phase - 1]:
        assert partial in rollback_phases(plan, at(weight, phase)), "the automatic step back"
