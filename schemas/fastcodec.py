"""The hot topics' decoder: results and feedback through msgspec, to the same models.

A typed msgspec Struct per hot model holds exactly the contract's constraints (strict
types, no NaN or infinity, string and list bounds, enums, ranges, the ``schema`` tag,
unknown fields ignored) and is at least as strict as pydantic: whatever it refuses, or
cannot tell apart from what pydantic would read differently, goes to
:func:`schemas.codec.decode`, which gives the model or the dead-letter reason. So
reasons are the pydantic ones by construction; rejections are rare, the fast path is
the rule. Timestamps are RFC 3339 with a zone and at most six fractional digits,
normalised to UTC. Fields pydantic fills by a factory (``event_id``, ``ts``) are
required here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec
from pydantic import BaseModel

from schemas.codec import DecodeError, collection_paused, decode, decode_many
from schemas.events import ErrorInfo, Feedback, Result

M = TypeVar("M", bound=BaseModel)

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Text = Annotated[str, msgspec.Meta(max_length=4096)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Weight = Annotated[int, msgspec.Meta(ge=0, le=100)]
_timestamp = msgspec.json.Decoder(Annotated[datetime, msgspec.Meta(tz=True)]).decode


def _utc(raw: msgspec.Raw) -> datetime:
    """The JSON string ``raw`` as a UTC time, if pydantic reads it alike: msgspec rounds a
    seventh fractional digit where pydantic cuts it, and an escape could hide one. Up to
    29 bytes (``"2026-01-01T00:00:00.123456Z"``) there is no room for a seventh."""
    if len(raw) > 29:
        text = bytes(raw)
        dot = text.find(b".")
        zone = max(text.rfind(b"Z"), text.rfind(b"z"), text.rfind(b"+"), text.rfind(b"-"))
        if (dot >= 0 and zone - dot > 7) or b"\\" in text:
            raise ValueError("left to pydantic")
    return _timestamp(raw).astimezone(UTC)


class _ErrorInfo(msgspec.Struct):
    type: Name
    message: Text = ""
    critical: bool = False


class _Result(msgspec.Struct):
    event_id: UUID
    ts: msgspec.Raw
    rollout: Name
    system: Name
    query_id: Name
    unit_id: Name
    success: bool
    confidence: Confidence
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0, le=86_400_000.0)]
    error: _ErrorInfo | None = None
    rules: Annotated[list[Name], msgspec.Meta(max_length=256)] = []
    fallback: bool = False
    weight: Weight = 0
    schema_: Literal["phasegate.result/1"] = msgspec.field(
        default="phasegate.result/1", name="schema"
    )
    # pydantic also reads a field by its Python name (populate_by_name): checked, then dropped
    by_name: Literal["phasegate.result/1"] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="schema_"
    )


class _Feedback(msgspec.Struct):
    event_id: UUID
    ts: msgspec.Raw
    rollout: Name
    query_id: Name
    system: Name
    verdict: Literal["correct", "incorrect", "unsure"]
    comment: Text | None = None
    schema_: Literal["phasegate.feedback/1"] = msgspec.field(
        default="phasegate.feedback/1", name="schema"
    )
    by_name: Literal["phasegate.feedback/1"] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="schema_"
    )


STRUCTS: dict[type[BaseModel], type[msgspec.Struct]] = {Result: _Result, Feedback: _Feedback}
"""The hot models and their typed mirrors."""
_DECODERS = {model: msgspec.json.Decoder(struct) for model, struct in STRUCTS.items()}
_asdict = msgspec.structs.asdict
_new = object.__new__
_set = object.__setattr__


_FIELDS = {model: frozenset(model.model_fields) for model in (*STRUCTS, ErrorInfo)}


def _built(model: type[M], fields: dict[str, Any]) -> M:
    """``model`` holding ``fields`` (every field, already valid): what ``model_construct``
    does, without its pass over the fields (8 us a result). Every field counts as set."""
    instance = _new(model)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(_FIELDS[model]))  # its own: model_copy adds
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def _model(model: type[M], struct: Any) -> M:
    fields = _asdict(struct)
    del fields["by_name"]
    fields["ts"] = _utc(struct.ts)
    error = fields.get("error")
    if error is not None:
        fields["error"] = _built(ErrorInfo, _asdict(error))
    return _built(model, fields)


def fast_decode(data: bytes | str | None, expect: type[M]) -> M:
    """What :func:`schemas.codec.decode` gives (the model, or the same
    :class:`DecodeError`), 3-4x faster for results and feedback."""
    decoder = _DECODERS.get(expect)
    if decoder is None or data is None:
        return decode(data, expect)
    try:
        return _model(expect, decoder.decode(data))
    except (msgspec.DecodeError, ValueError, OverflowError):
        return decode(data, expect)  # the reason, or a form only pydantic reads


def fast_decode_many(
    values: Sequence[bytes | str | None], expect: type[M]
) -> list[M | DecodeError]:
    """Per value, what :func:`fast_decode` gives (the model or the :class:`DecodeError`);
    the garbage collector paused meanwhile. Other models go to ``decode_many``."""
    if expect not in _DECODERS:
        return decode_many(values, expect)
    out: list[M | DecodeError] = []
    with collection_paused():
        for value in values:
            try:
                out.append(fast_decode(value, expect))
            except DecodeError as exc:
                out.append(exc)
    return out
