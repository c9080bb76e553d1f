"""The msgspec decoder gives, per message, what the pydantic decoder gives: the same model
or the same dead-letter reason."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, create_model

from phasegate.testing.faults.hostile import MAKERS
from schemas import DecodeError, Feedback, Result, decode, encode
from schemas.base import ContractModel
from schemas.events import ErrorInfo
from schemas.fastcodec import _mirror, fast_decode, fast_decode_many, fast_decode_structs

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
    assert fast == outcome(struct_as_model, wire, model)
    return fast


def struct_as_model(wire: bytes | None, model: type) -> object:
    """What :func:`fast_decode_structs` gives for ``wire``, a Struct made the model."""
    [got] = fast_decode_structs([wire], model)
    if isinstance(got, DecodeError):
        raise got
    return as_model(got, model)


def as_model(got: Any, model: type) -> Any:
    """``got`` (a Struct of ``model``, the model itself, or a DecodeError) as the model."""
    if isinstance(got, model | DecodeError):  # left to pydantic
        return got
    assert got.ts.utcoffset().total_seconds() == 0
    return model.model_validate(msgspec.to_builtins(got))


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
TOO_LONG = _long(4097, 4098)
ODD_BOOL = st.sampled_from([1, 0, "true", None]) | ANY_JSON
ODD_NUMBER = (
    st.floats()
    | st.integers(-(10**30), 10**30)
    | st.sampled_from([-0.0, -1e-300, 1.0000000000000002, 86_400_000.00000001, True, "1"])
)


def beyond(low: float, high: float) -> st.SearchStrategy[object]:
    """Numbers just out of [low, high], or of another kind."""
    edges = [math.nextafter(low, -math.inf), low - 1, math.nextafter(high, math.inf), high + 1]
    return st.sampled_from(edges) | st.floats(high, high * 2, exclude_min=True) | ODD_NUMBER


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
    forms = [text, seconds, str(seconds), text[:10], text[:19]]  # a date, naive
    return draw(st.sampled_from(forms) if odd else st.just(text))


@st.composite
def event_ids(draw: st.DrawFn, odd: bool = False) -> object:
    value = draw(st.uuids())
    if not odd:
        return draw(st.sampled_from([str(value), str(value).upper(), value.hex]))
    forms = [f"{{{value}}}", f"urn:uuid:{value}", str(value)[:-1] + "g", value.hex[:-1]]
    return draw(st.sampled_from(forms) | st.text(max_size=40) | ANY_JSON)


ERROR = st.fixed_dictionaries({"type": NAME}, optional={"message": TEXT, "critical": st.booleans()})
ODD_IN_ERROR = {"type": ODD_NAME, "message": TOO_LONG | ANY_JSON, "critical": ODD_BOOL}


@st.composite
def odd_errors(draw: st.DrawFn) -> dict:
    """A valid error but for one field: odd, or a required one missing."""
    error = draw(ERROR)
    name = draw(st.sampled_from(sorted(ODD_IN_ERROR)))
    if name == "type" and draw(st.booleans()):
        del error["type"]
    else:
        error[name] = draw(ODD_IN_ERROR[name])
    return error


RULES = st.lists(NAME, max_size=3) | st.lists(st.just("r"), min_size=256, max_size=256)
TOO_MANY = st.lists(st.just("r"), min_size=257, max_size=258)
ODD_RULES = st.lists(ODD_NAME, min_size=1, max_size=2) | TOO_MANY | _long(1, 2)
SEGMENT = (st.none() | NAME, ODD_NAME)
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
        "success": (st.booleans(), ODD_BOOL),
        "confidence": (st.floats(0, 1) | st.integers(0, 1), beyond(0, 1)),
        "latency_ms": (
            st.floats(0, 86_400_000) | st.integers(0, 86_400_000),
            beyond(0, 86_400_000),
        ),
        "error": (st.none() | ERROR, odd_errors() | ANY_JSON),
        "rules": (RULES, ODD_RULES),
        "segment": SEGMENT,
        "fallback": (st.booleans(), ODD_BOOL),
        "weight": (st.integers(0, 100), beyond(0, 100) | st.sampled_from([1.0, 50.5])),
        "schema": (st.just("phasegate.result/1"), st.sampled_from(["phasegate.result/2", None])),
    },
    Feedback: {
        **COMMON,
        "verdict": (st.sampled_from(["correct", "incorrect", "unsure"]), ODD_NAME),
        "comment": (st.none() | TEXT, TOO_LONG | ANY_JSON),
        "rules": (RULES, ODD_RULES),
        "segment": SEGMENT,
        "schema": (st.just("phasegate.feedback/1"), st.just("phasegate.result/1")),
    },
}
CHANGES = ["odd", "twice", "by_name", "drop"]  # hypothesis favours the first


@st.composite
def messages(draw: st.DrawFn, model: type, focus: str) -> bytes:
    """A JSON object of ``model``'s fields; ``focus`` (and perhaps one more) missing, odd,
    under its Python name (``schema_``) or given twice; perhaps unknown fields; NaN and
    Infinity as Python writes them."""
    fields = FIELDS[model]
    data = {name: draw(valid) for name, (valid, _odd) in fields.items()}
    twice = []
    for name in [focus, *draw(st.lists(st.sampled_from(sorted(fields)), max_size=1))]:
        change = draw(st.sampled_from(CHANGES))
        if change == "drop":
            data.pop(name, None)
        elif change == "odd" or (change == "by_name" and name != "schema"):
            data[name] = draw(fields[name][1])
        elif change == "by_name":  # perhaps beside "schema", perhaps instead
            data["schema_"] = draw(st.one_of(*fields[name]))
            if draw(st.booleans()):
                data.pop("schema", None)
        else:
            twice.append(f"{json.dumps(name)}: {json.dumps(draw(st.one_of(*fields[name])))}")
    data.update(draw(st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=2)))
    wire = json.dumps(data)
    return (wire[:-1] + "".join(", " + t for t in twice) + "}").encode() if twice else wire.encode()


# -- tests -----------------------------------------------------------------------------

EACH_FIELD = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("focus", sorted(FIELDS[Result]))
@EACH_FIELD
@given(data=st.data())
def test_results_decode_the_same(focus: str, data: st.DataObject) -> None:
    same(data.draw(messages(Result, focus)), Result)


@pytest.mark.parametrize("focus", sorted(FIELDS[Feedback]))
@EACH_FIELD
@given(data=st.data())
def test_feedback_decodes_the_same(focus: str, data: st.DataObject) -> None:
    same(data.draw(messages(Feedback, focus)), Feedback)


@pytest.mark.parametrize(
    "wire",
    [
        encode(Result(rollout="k", system="s", query_id="q", unit_id="u", success=True,
                      confidence=1, latency_ms=0, error={"type": "t"}, rules=["a"])),
        encode(Feedback(rollout="k", system="s", query_id="q", verdict="unsure", comment="c")),
        encode(Feedback(rollout="k", system="s", query_id="q", verdict="incorrect",
                        rules=["a", "b"], segment="de")),
    ],
)  # fmt: skip
def test_what_the_producers_write_takes_the_fast_path(wire: bytes, monkeypatch) -> None:
    import schemas.fastcodec

    model = type(decode(wire))
    expected = decode(wire, model)
    monkeypatch.setattr(schemas.fastcodec, "decode", None)  # pydantic is not asked
    got = fast_decode(wire, model)
    assert got == expected
    assert got.model_copy(update={"rollout": "other"}) == expected.model_copy(
        update={"rollout": "other"}
    )


VALID_TS = '{"rollout": "k", "system": "s", "query_id": "q", "unit_id": "u", "success": true, '
VALID_TS += '"confidence": 0.5, "latency_ms": 1, "event_id": "' + "1" * 32 + '", "ts": "%s"}'


@pytest.mark.parametrize(
    "ts",
    [
        "2026-01-01T00:00:00.1234567Z",  # msgspec would round, pydantic truncates
        "2026-01-01T00:00:00.9999999Z",
        "2026-01-01T00:00:00\\u002e9999999Z",  # the dot escaped
        "2026-01-01T00:00:00.9999999+01:00",
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


def test_structs_of_a_batch_are_what_each_value_gives_alone() -> None:
    good = encode(Result(rollout="k", system="s", query_id="q", unit_id="u", success=True,
                         confidence=0.5, latency_ms=1.0))  # fmt: skip
    values = [good, b"{", None, good.decode(), b"\xff"] + [
        (VALID_TS % ts).encode()
        for ts in ("2026-01-01T02:00:00+02:00", "2026-01-01T00:00:00.1234567Z", "noon")
    ]
    expected = [as_outcome(_reason_or_model(decode, v, Result)) for v in values]
    for batch in (values, values[:1] + values[5:], values[5:6]):
        got = [as_outcome(as_model(s, Result)) for s in fast_decode_structs(batch, Result)]
        assert got == [expected[values.index(v)] for v in batch]


@pytest.mark.parametrize(
    "annotation",
    [
        Annotated[int, Field(gt=0)],
        Annotated[str, Field(pattern="^a")],
        dict[str, int],
        list[ErrorInfo],
    ],
)
def test_a_constraint_without_a_mirror_is_refused_not_lost(annotation: Any) -> None:
    """The Structs are derived from the models: what msgspec would not check fails loudly."""
    model = create_model("Odd", field=(annotation, ...), __base__=ContractModel)
    with pytest.raises(TypeError, match="no msgspec mirror"):
        _mirror(model)
