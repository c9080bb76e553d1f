"""The msgspec encoder writes what the pydantic encoder writes."""

from __future__ import annotations

import json
from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from schemas import encode
from schemas.events import (
    Alert,
    AlertAction,
    AlertWindow,
    ErrorInfo,
    Feedback,
    Figure,
    Result,
    RolloutEvent,
)
from schemas.fastcodec import fast_encode

NAME = st.text(min_size=1, max_size=12)
TEXT = st.text(max_size=40)
WEIGHT = st.integers(0, 100)
TS = st.datetimes(timezones=st.just(UTC))
UNIT = st.floats(0.0, 1.0)
ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False)

RESULTS = st.builds(
    Result,
    ts=TS,
    rollout=NAME,
    system=NAME,
    query_id=NAME,
    unit_id=NAME,
    success=st.booleans(),
    confidence=UNIT,
    latency_ms=st.floats(0.0, 86_400_000.0) | st.integers(0, 86_400_000),
    error=st.none() | st.builds(ErrorInfo, type=NAME, message=TEXT, critical=st.booleans()),
    rules=st.lists(NAME, max_size=4),
    fallback=st.booleans(),
    weight=WEIGHT,
    segment=st.none() | NAME,
)
FEEDBACK = st.builds(
    Feedback,
    ts=TS,
    rollout=NAME,
    query_id=NAME,
    system=NAME,
    verdict=st.sampled_from(["correct", "incorrect", "unsure"]),
    comment=st.none() | TEXT,
)
ROLLOUT_EVENTS = st.builds(
    RolloutEvent,
    ts=TS,
    rollout=NAME,
    type=st.sampled_from(["weight_set", "phase_started", "decision", "rollback"]),
    weight=st.none() | WEIGHT,
    phase=st.none() | st.integers(0, 10**6),
    reason=TEXT,
    actor=NAME,
)
ALERTS = st.builds(
    Alert,
    ts=TS,
    rollout=NAME,
    system=NAME,
    severity=st.sampled_from(["info", "warning", "critical"]),
    kind=NAME,
    metric=NAME,
    observed=ANY_FLOAT,
    threshold=ANY_FLOAT,
    window=TS.map(lambda t: AlertWindow(start=t, end=t)),
    samples=st.integers(0, 10**9),
    action=st.none() | st.builds(AlertAction, weight_from=WEIGHT, weight_to=WEIGHT),
    figures=st.lists(st.builds(Figure, system=NAME, value=ANY_FLOAT), max_size=2),
)


@given(RESULTS | FEEDBACK | ROLLOUT_EVENTS)
def test_the_emitted_events_encode_to_the_same_bytes(event):
    assert fast_encode(event) == encode(event)


@given(ALERTS)
def test_any_contract_model_encodes_to_the_same_json(alert):
    assert json.loads(fast_encode(alert)) == json.loads(encode(alert))
    assert list(json.loads(fast_encode(alert))) == list(json.loads(encode(alert)))  # key order


def test_a_renamed_field_anywhere_keeps_its_wire_name_and_place():
    from pydantic import Field

    from schemas.base import ContractModel

    class Inner(ContractModel):
        a: int = 1
        b_: int = Field(2, alias="b")

    class Outer(ContractModel):
        first: str = "x"
        inner: Inner = Inner()
        tag_: str = Field("t", alias="tag")

    assert (
        fast_encode(Outer()) == encode(Outer()) == b'{"first":"x","inner":{"a":1,"b":2},"tag":"t"}'
    )
