import json
from uuid import uuid4

import pytest

from schemas import (
    Alert,
    AlertWindow,
    DeadLetter,
    DecodeError,
    Feedback,
    Result,
    RolloutEvent,
    decode,
    encode,
)
from schemas.export import PUBLIC, export

RESULT = Result(
    rollout="kai",
    system="production",
    query_id="q1",
    unit_id="u1",
    success=True,
    confidence=0.9,
    latency_ms=120,
    rules=["greeting"],
)


def _wire(**changes) -> bytes:
    data = json.loads(encode(RESULT))
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_round_trip_every_message_type():
    feedback = Feedback(rollout="kai", query_id="q1", system="production", verdict="correct")
    rollout = RolloutEvent(rollout="kai", type="weight_set", weight=50, actor="ops")
    alert = Alert(
        rollout="kai",
        system="production",
        severity="critical",
        kind="emergency_rollback",
        metric="success_rate",
        observed=0.8,
        threshold=0.9,
        window=AlertWindow(start=RESULT.ts, end=RESULT.ts),
        samples=500,
    )
    letter = DeadLetter(component="t", source_topic="x", reason="bad", original=b"\xff\x00")
    for message in (RESULT, feedback, rollout, alert, letter):
        assert decode(encode(message)) == message
        assert decode(encode(message), type(message)) == message


def test_wire_uses_contract_names():
    data = json.loads(encode(RESULT))
    assert data["schema"] == "phasegate.result/1"
    assert data["ts"].endswith("Z")
    assert "schema_" not in data


def test_timestamps_are_normalised_to_utc():
    r = decode(_wire(ts="2026-01-01T02:00:00+02:00"), Result)
    assert r.ts.isoformat() == "2026-01-01T00:00:00+00:00"


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert decode(_wire(added_in_v1_1="x"), Result) == RESULT


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"{not json", "json: Invalid JSON"),
        (b"\xff\xfe", "json: Invalid JSON"),
        (b"[]", "message: Input should be an object"),
        (_wire(latency_ms="12"), "latency_ms: Input should be a valid number"),
        (_wire(latency_ms=-1), "latency_ms: Input should be greater than or equal to 0"),
        (_wire(confidence=1.5), "confidence: Input should be less than or equal to 1"),
        (_wire(success="yes"), "success: Input should be a valid boolean"),
        (_wire(ts="2026-01-01T00:00:00"), "ts: Input should have timezone info"),
        (_wire(rollout=...), "rollout: Field required"),
        (_wire(event_id="nope"), "event_id: Input should be a valid UUID"),
        (_wire(system="x" * 10_000), "system: String should have at most 256 characters"),
        (_wire(error={"message": "m"}), "error.type: Field required"),
    ],
)
def test_invalid_messages_name_the_field_and_reason(wire, reason):
    with pytest.raises(DecodeError) as exc:
        decode(wire, Result)
    assert reason in exc.value.reason


def test_nan_is_refused():
    wire = encode(RESULT).replace(b'"latency_ms":120.0', b'"latency_ms":NaN')
    with pytest.raises(DecodeError, match="latency_ms"):
        decode(wire, Result)


def test_schema_tag_picks_the_model_or_says_why_not():
    with pytest.raises(DecodeError, match=r"unknown schema 'phasegate\.result/9'"):
        decode(_wire(schema="phasegate.result/9"))
    with pytest.raises(DecodeError, match="schema: field required"):
        decode(_wire(schema=...))
    with pytest.raises(DecodeError, match=r"schema: Input should be 'phasegate\.feedback/1'"):
        decode(encode(RESULT), Feedback)


def test_schema_export_writes_valid_json_schema(tmp_path):
    import jsonschema

    paths = export(tmp_path)
    assert {p.name for p in paths} == {f"{n}.v1.schema.json" for n in PUBLIC}
    schema = json.loads((tmp_path / "result.v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(encode(RESULT)), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(_wire(confidence=2)), schema)


def test_feedback_may_name_the_answers_rules_and_segment_and_older_feedback_stays_valid(
    tmp_path,
):
    import jsonschema

    export(tmp_path)
    schema = json.loads((tmp_path / "feedback.v1.schema.json").read_text())
    old = {"schema": "phasegate.feedback/1", "rollout": "k", "query_id": "q", "system": "s"}
    old |= {"verdict": "incorrect", "event_id": str(uuid4()), "ts": "2026-01-01T00:00:00Z"}
    new = old | {"rules": ["r1", "r7"], "segment": "de"}
    for wire in (old, new):
        jsonschema.validate(wire, schema)
    assert decode(json.dumps(old).encode(), Feedback).rules == []
    assert decode(json.dumps(new).encode(), Feedback).segment == "de"
    for odd in ({"rules": [""]}, {"rules": ["r"] * 257}, {"segment": ""}, {"segment": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(old | odd, schema)
        with pytest.raises(DecodeError):
            decode(json.dumps(old | odd).encode(), Feedback)
