"""The msgspec decoder gives, per message, what the pydantic decoder gives: the same model
or the same dead-letter reason."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from phasegate.testing.faults.hostile import MAKERS
from schemas import DecodeError, Feedback, Result, decode, encode
from schemas.fastcodec import STRUCTS, fast_decode, fast_decode_many

FACTORY_FILLED = ("event_id", "ts")  # a fresh uuid4 / now() on every decode


def outcome(decoder: Any, wire: bytes | None, model: type) -> object:
    """Comparable: the model's wire form, or the dead-letter reason."""
    try:
        got = decoder(wire, model)
    except DecodeError as exc:
        return ("error", exc.reason)
    assert type(got) is model and got.ts.tzinfo is not None and got.ts.utcoffset().seconds == 0
    data = json.loads(encode(got))
    given_keys = json.loads(wire) if isinstance(json.loads(wire), dict) else {}
    return {k: v for k, v in data.items() if k in given_keys or k not in FACTORY_FILLED}


def same(wire: bytes | None, model: type) -> object:
    """Both decoders agree on ``wire``; returns what they say."""
    fast = outcome(fast_decode, wire, model)
    assert fast == outcome(decode, wire, model)
    return fast


def same_bytes(wire: bytes | None, model: type) -> None:
    """As :func:`same` for any bytes, JSON or not."""
    try:
        json.loads(wire)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        fast, slow = (_reason_or_model(d, wire, model) for d in (fast_decode, decode))
        assert fast == slow
        return
    same(wire, model)


def _reason_or_model(decoder: Any, wire: Any, model: type) -> object:
    try:
        return decoder(wire, model)
    except DecodeError as exc:
        return as_outcome(exc)


def as_outcome(got: object) -> object:
    return ("error", got.reason) if isinstance(got, DecodeError) else got


# -- strategies: each field valid, or odd (a wrong type, out of bounds, another form) ---

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


def _long(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.builds(lambda c, n: c * n, st.characters(), st.integers(lo, hi))


NAME = st.text(min_size=1, max_size=8) | _long(255, 256)
ODD_NAME = st.sampled_from(["", "\ud800"]) | _long(257, 260) | ANY_JSON
TEXT = st.text(max_size=8) | _long(4095, 4096)
ODD_NUMBER = (
    st.floats()
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([-0.0, -1e-300, 1.0000000000000002, 86_400_000.00000001, True, "1"])
)


@st.composite
def timestamps(draw: st.DrawFn, odd: bool = False) -> object:
    """ISO-8601 with a zone (``odd``: other separators, digits, zones, a number)."""
    when = draw(st.datetimes())
    sep = draw(st.sampled_from("T t_") if odd else st.just("T"))
    text = when.isoformat(sep=sep, timespec="seconds")
    fraction = draw(st.text("0123456789", max_size=9 if odd else 6))
    text += "." + fraction if fraction or (odd and draw(st.booleans())) else ""
    minutes = draw(st.integers(-24 * 60 + 1, 24 * 60 - 1))
    zones = ["Z", "{:+03d}:{:02d}"] + (["z", "", "-00:00", "+0200", "+02"] if odd else [])
    text += draw(st.sampled_from(zones)).format(minutes // 60, abs(minutes) % 60)
    seconds = int((when - datetime(1970, 1, 1)).total_seconds())
    return draw(st.sampled_from([text, seconds, str(seconds)]) if odd else st.just(text))


@st.composite
def event_ids(draw: st.DrawFn, odd: bool = False) -> object:
    value = draw(st.uuids())
    if not odd:
        return draw(st.sampled_from([str(value), str(value).upper(), value.hex]))
    forms = [f"{{{value}}}", f"urn:uuid:{value}", str(value)[:-1] + "g", value.hex[:-1]]
    return draw(st.sampled_from(forms) | st.text(max_size=40) | ANY_JSON)


ERROR = st.fixed_dictionaries({"type": NAME}, optional={"message": TEXT, "critical": st.booleans()})
ODD_ERROR = st.fixed_dictionaries(
    {}, optional={"type": ODD_NAME, "message": ANY_JSON, "critical": ANY_JSON}
)
RULES = st.lists(NAME, max_size=3) | st.lists(st.just("r"), min_size=256, max_size=256)
COMMON = {  # field: (valid, odd)
    "event_id": (event_ids(), event_ids(odd=True)),
    "ts": (timestamps(), timestamps(odd=True)),
    "rollout": (NAME, ODD_NAME),
    "system": (NAME, ODD_NAME),
    "query_id": (NAME, ODD_NAME),
}
FIELDS: dict[type, dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]] = {
    Result: {
        **COMMON,
        "unit_id": (NAME, ODD_NAME),
        "success": (st.booleans(), ANY_JSON),
        "confidence": (st.floats(0, 1) | st.integers(0, 1), ODD_NUMBER),
        "latency_ms": (st.floats(0, 86_400_000) | st.integers(0, 86_400_000), ODD_NUMBER),
        "error": (st.none() | ERROR, ODD_ERROR | ANY_JSON),
        "rules": (RULES, st.lists(ODD_NAME, min_size=1, max_size=2) | _long(257, 258)),
        "fallback": (st.booleans(), ANY_JSON),
        "weight": (st.integers(0, 100), st.integers(-2, 102) | ODD_NUMBER),
        "schema": (st.just("phasegate.result/1"), st.sampled_from(["phasegate.result/2", None])),
    },
    Feedback: {
        **COMMON,
        "verdict": (st.sampled_from(["correct", "incorrect", "unsure"]), ODD_NAME),
        "comment": (st.none() | TEXT, ANY_JSON),
        "schema": (st.just("phasegate.feedback/1"), st.just("phasegate.result/1")),
    },
}
CHANGES = ["drop", "odd", "by_name", "twice"]


@st.composite
def messages(draw: st.DrawFn, model: type) -> bytes:
    """A JSON object of ``model``'s fields, a few of them missing, odd, under their Python
    name (``schema_``) or given twice; perhaps unknown fields; NaN and Infinity as Python
    writes them."""
    fields = FIELDS[model]
    data = {name: draw(valid) for name, (valid, _odd) in fields.items()}
    twice = []
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2)):
        change = draw(st.sampled_from(CHANGES))
        if change == "drop":
            data.pop(name, None)
        elif change == "odd" or (change == "by_name" and name != "schema"):
            data[name] = draw(fields[name][1])
        elif change == "by_name":
            data["schema_"] = data.pop("schema", None) or draw(fields[name][1])
        else:
            twice.append(f"{json.dumps(name)}: {json.dumps(draw(st.one_of(*fields[name])))}")
    data.update(draw(st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=2)))
    wire = json.dumps(data)
    return (wire[:-1] + "".join(", " + t for t in twice) + "}").encode() if twice else wire.encode()


# -- tests -----------------------------------------------------------------------------

SLOW = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(messages(Result))
@example(encode(Result(rollout="k", system="s", query_id="q", unit_id="u", success=True,
                       confidence=1, latency_ms=0, error={"type": "t"}, rules=["a"])))  # fmt: skip
@example(b'{"ts": "2026-01-01T00:00:00.9999999Z", "event_id": "' + b"1" * 32 + b'"}')
def test_results_decode_the_same(wire: bytes) -> None:
    same(wire, Result)


@SLOW
@given(messages(Feedback))
def test_feedback_decodes_the_same(wire: bytes) -> None:
    same(wire, Feedback)


VALID_TS = '{"rollout": "k", "system": "s", "query_id": "q", "unit_id": "u", "success": true, '
VALID_TS += '"confidence": 0.5, "latency_ms": 1, "event_id": "' + "1" * 32 + '", "ts": "%s"}'


@pytest.mark.parametrize(
    "ts",
    [
        "2026-01-01T00:00:00.1234567Z",  # msgspec would round, pydantic truncates
        "2026-01-01T00:00:00.9999999Z",
        "2026-01-01 00:00:00+02:00",
        "2026-01-01T00:00:00+0200",
        "2026-01-01T23:59:60Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_timestamps_read_alike(ts: str) -> None:
    same((VALID_TS % ts).encode(), Result)


def test_a_timestamp_out_of_range_in_utc_is_a_dead_letter_not_a_crash() -> None:
    with pytest.raises(DecodeError, match="ts: "):
        fast_decode((VALID_TS % "0001-01-01T00:00:00+01:00").encode(), Result)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("maker", MAKERS, ids=lambda m: getattr(m, "__name__", "maker"))
def test_every_hostile_input_of_the_fault_suite(maker: Any, seed: int) -> None:
    rng = random.Random(seed)
    recent = [Result(rollout="k", system="s", query_id="q", unit_id="u", success=True,
                     confidence=0.5, latency_ms=1.0)]  # fmt: skip
    bad = maker("kai", rng, recent)
    for model in (Result, Feedback):
        same_bytes(bad.value, model)
    [got] = fast_decode_many([bad.value], Result)
    assert as_outcome(got) == _reason_or_model(decode, bad.value, Result)


def test_many_is_one_by_one_and_other_models_go_to_decode_many() -> None:
    from schemas import RolloutEvent

    good = encode(Result(rollout="k", system="s", query_id="q", unit_id="u", success=True,
                         confidence=0.5, latency_ms=1.0))  # fmt: skip
    values = [good, b"{", None, good.decode(), b"\xff"]
    assert list(map(as_outcome, fast_decode_many(values, Result))) == [
        _reason_or_model(decode, v, Result) for v in values
    ]
    rollout = encode(RolloutEvent(rollout="k", type="weight_set", weight=5))
    assert fast_decode_many([rollout], RolloutEvent) == [decode(rollout, RolloutEvent)]


@pytest.mark.parametrize("model", sorted(STRUCTS, key=lambda m: m.__name__))
def test_every_contract_field_has_its_typed_mirror(model: type) -> None:
    """A field added to the contract must be added to the Struct (the tests above then
    check its constraints)."""
    wire = {f.alias or name for name, f in model.model_fields.items()}
    mirrored = set(STRUCTS[model].__struct_encode_fields__) - {"schema_"}  # see by_name
    assert mirrored == wire
