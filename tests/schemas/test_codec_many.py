"""``decode_many`` gives, per value, exactly what ``decode`` gives for it alone."""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from phasegate.testing.faults.hostile import MAKERS
from schemas import DecodeError, Feedback, Result, RolloutEvent, decode, encode
from schemas.codec import decode_many


def _result(i: int) -> Result:
    return Result(
        rollout="kai", system="production", query_id=f"q{i}", unit_id=f"u{i}",
        success=i % 3 != 0, confidence=(i % 10) / 10, latency_ms=float(i), rules=["r"] * (i % 3),
    )  # fmt: skip


VALID = [encode(_result(i)) for i in range(6)]
VALID += [
    encode(Feedback(rollout="kai", query_id="q", system="pipeline", verdict="correct")),
    encode(RolloutEvent(rollout="kai", type="weight_set", weight=50)),
]
_rng = random.Random(7)
HOSTILE = [maker("kai", _rng, [_result(0)]).value for maker in MAKERS for _ in range(2)]
# fragments that are not one JSON value alone but could pass for several, or none, once joined
FRAGMENTS: list[bytes | str | None] = [
    VALID[0] + b"," + VALID[1],
    VALID[0] + b"]",
    b"[" + VALID[0],
    b"",
    b"  ",
    b",",
    b"]",
    b'{"schema": "phasegate.result/1", "x": "',
    b'"}',
    b"\xff" + VALID[0],
    VALID[0].decode(),
    None,
]
POOL = VALID * 3 + HOSTILE + FRAGMENTS


def outcome(value: Result | DecodeError | object) -> object:
    """Comparable: the model, or the error's reason."""
    return ("error", value.reason) if isinstance(value, DecodeError) else value


def one_by_one(values: list, expect: type | None) -> list[object]:
    out = []
    for value in values:
        try:
            out.append(decode(value, expect))
        except DecodeError as exc:
            out.append(("error", exc.reason))
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(POOL), max_size=60),
    st.sampled_from([Result, Feedback, None]),
)
@example([FRAGMENTS[0], *VALID[:8], HOSTILE[8]], Result)  # two items in one, then a bad one
def test_decode_many_is_decode_per_value(values: list, expect: type | None) -> None:
    assert [outcome(v) for v in decode_many(values, expect)] == one_by_one(values, expect)


def test_a_clean_batch_is_validated_whole_and_a_broken_one_splits_down(monkeypatch) -> None:
    import schemas.codec as codec

    alone: list[object] = []
    monkeypatch.setattr(codec, "decode", lambda v, e=None: alone.append(v) or decode(v, e))
    clean = VALID[:6] * 100
    assert decode_many(clean, Result) == [decode(v, Result) for v in clean]
    assert alone == []  # one validator call, no message decoded alone
    broken = [*clean[:299], b'{"schema": ', *clean[299:]]
    got = decode_many(broken, Result)
    assert isinstance(got[299], DecodeError) and got[299].reason.startswith("json:")
    assert got[:299] + got[300:] == [decode(v, Result) for v in clean]
    assert b'{"schema": ' in alone and len(alone) <= 16  # halved down to two of <= 8


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(VALID), min_size=9, max_size=40),
    st.sampled_from(HOSTILE + FRAGMENTS),
    st.integers(min_value=0),
)
def test_one_odd_value_among_valid_ones(valid: list, odd: object, where: int) -> None:
    values = [*valid]
    values.insert(where % (len(values) + 1), odd)
    assert [outcome(v) for v in decode_many(values, None)] == one_by_one(values, None)


def test_the_collector_is_paused_only_meanwhile() -> None:
    import gc

    seen: list[bool] = []
    hostile = [*VALID, b"{broken"]
    assert gc.isenabled()
    gc.callbacks.append(lambda phase, info: seen.append(phase == "start"))
    try:
        decode_many(hostile * 2000, None)  # enough new objects for many collections
    finally:
        gc.callbacks.pop()
    assert gc.isenabled() and seen.count(True) <= 1  # at most one, right at the end
    gc.disable()
    try:
        decode_many(VALID, None)
        assert not gc.isenabled()  # a caller's choice is left alone
    finally:
        gc.enable()
