"""Weight control: which actions the page may append, and the events they become (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.control import Ladder, Refused, decide
from rollout.state import RolloutState
from schemas.events import RolloutEvent

LADDER = Ladder()  # the seed: 50, 75, 100, 100


def at(weight: int, phase: int = 0) -> RolloutState:
    state = RolloutState(rollout="kai")
    return state.apply(RolloutEvent(rollout="kai", type="weight_set", weight=weight, phase=phase))


def test_set_weight_one_step_up_is_an_event_with_actor_and_reason() -> None:
    event = decide("set_weight", {"weight": 75, "actor": "ana", "reason": "go"}, at(50))
    assert (event.type, event.weight, event.actor, event.reason) == ("weight_set", 75, "ana", "go")
    assert event.rollout == "kai"
    assert decide("set_weight", {"weight": 60}, at(50)).weight == 60, "within the step"
    default = decide("set_weight", {"weight": 50}, at(0))
    assert default.actor == "dashboard" and default.reason == "weight 0% -> 50% from the dashboard"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"weight": 101}, "weight must be from 0 to 100, not 101"),
        ({"weight": -5}, "weight must be from 0 to 100, not -5"),
        ({"weight": 62.5}, "weight must be a whole number from 0 to 100, not 62.5"),
        ({"weight": "75"}, "weight must be a whole number from 0 to 100, not '75'"),
        ({"weight": True}, "weight must be a whole number"),
        ({}, "weight must be a whole number from 0 to 100, not None"),
        ({"weight": 100}, "from 50% the next step is 75%, not 100%"),
        ({"weight": 0}, "a rollback to 0% needs confirmation"),
    ],
)
def test_refusals_say_why(body: dict, message: str) -> None:
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(")", r"\)")):
        decide("set_weight", body, at(50))


def test_lowering_is_always_allowed_and_zero_needs_confirmation() -> None:
    assert decide("set_weight", {"weight": 50}, at(100)).weight == 50
    assert decide("set_weight", {"weight": 0, "confirm": True}, at(100)).weight == 0
    assert decide("set_weight", {"weight": 0}, at(0)).weight == 0, "nothing to roll back"


def test_promote_walks_the_plan_and_stops_at_its_end() -> None:
    state = RolloutState(rollout="kai")
    seen = []
    for _ in range(4):
        event = decide("promote", {}, state)
        assert event.type == "phase_started"
        seen.append((event.phase, event.weight))
        state = state.apply(event)
    assert seen == [(1, 50), (2, 75), (3, 100), (4, 100)]
    with pytest.raises(Refused, match="already in the plan's last phase"):
        decide("promote", {}, state)


def test_the_phase_in_the_log_decides_what_promote_starts() -> None:
    event = decide("promote", {}, at(50))  # e.g. `phasegate simulate --set-weight 50`
    assert (event.phase, event.weight) == (1, 50), "not running: promote starts phase 1"
    assert (decide("promote", {}, at(75, phase=1)).phase, 75) == (2, 75)
    assert decide("promote", {}, at(100, phase=3)).phase == 4


def test_hold_and_rollback() -> None:
    hold = decide("hold", {"reason": "waiting for more feedback"}, at(75, 2))
    assert (hold.type, hold.weight, hold.phase) == ("decision", None, None)
    assert at(75, 2).apply(hold).weight == 75
    with pytest.raises(Refused, match="needs confirmation"):
        decide("rollback", {}, at(75, 2))
    back = decide("rollback", {"confirm": True}, at(75, 2))
    assert (back.type, back.weight, back.phase) == ("rollback", 0, 0)


def test_unknown_action_and_invalid_actor() -> None:
    with pytest.raises(Refused, match="unknown action 'jump'"):
        decide("jump", {}, at(50))
    with pytest.raises(Refused, match="actor"):
        decide("hold", {"actor": "x" * 300}, at(50))


@given(st.integers(0, 100), st.integers(-50, 150), st.booleans())
def test_never_more_than_one_phase_up(current: int, wanted: int, confirm: bool) -> None:
    try:
        event = decide("set_weight", {"weight": wanted, "confirm": confirm}, at(current))
    except Refused:
        step = LADDER.next_weight(current)
        assert (
            not 0 <= wanted <= 100
            or (wanted > current and (step is None or wanted > step))
            or (wanted == 0 and current > 0 and not confirm)
        )
    else:
        assert event.weight == wanted
        assert wanted <= current or wanted <= (LADDER.next_weight(current) or 100)


def test_ladder_phases() -> None:
    assert [LADDER.phase_of(w) for w in (0, 49, 50, 74, 75, 99, 100)] == [0, 0, 1, 1, 2, 2, 3]
    assert LADDER.next_weight(100) is None
    assert Ladder((10, 20)).next_weight(0) == 10
