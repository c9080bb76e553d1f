"""The hot paths' codec: results and feedback decoded through msgspec to the same models;
any contract model encoded through msgspec to the same bytes (:func:`fast_encode`).

A typed msgspec Struct per hot model, derived from the pydantic model, holds exactly the
contract's constraints (strict types, no NaN or infinity, string and list bounds, enums,
ranges, the ``schema`` tag, unknown fields ignored) and is at least as strict as
pydantic: whatever it refuses, or cannot tell apart from what pydantic would read
differently, goes to :func:`schemas.codec.decode`, which gives the model or the
dead-letter reason. So reasons are the pydantic ones by construction; rejections are
rare, the fast path is the rule. Timestamps are RFC 3339 with a zone and at most six
fractional digits, normalised to UTC. Fields pydantic fills by a factory (``event_id``,
``ts``) are required here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import msgspec
from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from schemas.codec import DecodeError, collection_paused, decode, decode_many
from schemas.events import Feedback, Result

M = TypeVar("M", bound=BaseModel)

_timestamp = msgspec.json.Decoder(Annotated[datetime, msgspec.Meta(tz=True)]).decode
_BOUNDS = (Ge, Le, MinLen, MaxLen)
_PLAIN = (str, int, float, bool, UUID, type(None))


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


def _bounded(typ: Any, metadata: list[Any]) -> Any:
    """``typ`` with the field's bounds; any other constraint is refused here, not lost."""
    bounds: dict[str, Any] = {}
    for item in metadata:
        if not isinstance(item, _BOUNDS):
            raise TypeError(f"no msgspec mirror for the constraint {item!r}")
        bounds.update(asdict(item))
    return Annotated[typ, msgspec.Meta(**bounds)] if bounds else typ


def _typed(annotation: Any, metadata: list[Any]) -> Any:
    """The msgspec type that reads strictly what pydantic reads for one contract field (a
    timestamp: its raw JSON, for :func:`_utc`)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is AwareDatetime:
        return msgspec.Raw  # its AfterValidator is _utc's astimezone
    if origin is Annotated:
        extra = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        return _typed(args[0], metadata + extra)
    if origin in (Union, UnionType):
        return _bounded(Union[tuple(_typed(a, []) for a in args)], metadata)  # noqa: UP007
    if origin is list and not _is_model(args[0]):
        return _bounded(list[_typed(args[0], [])], metadata)  # type: ignore[misc]
    if _is_model(annotation):
        return _bounded(_mirror(annotation), metadata)
    if annotation in _PLAIN or origin is Literal:
        return _bounded(annotation, metadata)
    raise TypeError(f"no msgspec mirror for {annotation!r}")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@functools.cache
def _mirror(model: type[BaseModel]) -> type[msgspec.Struct]:
    """A Struct with ``model``'s fields, wire names, bounds and defaults (a field pydantic
    fills by a factory is required: without it, pydantic decodes). A field with an alias is
    also read by its Python name (``populate_by_name``), as ``<name>_by_name``. Not
    tracked by the garbage collector (``gc=False``: its fields hold no cycle): a batch of
    thousands held until stored is not walked by every collection meanwhile."""
    fields: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        typ = _typed(info.annotation, list(info.metadata))
        given = info.default_factory is None and not info.is_required()
        default = info.default if given else msgspec.NODEFAULT
        fields.append((name, typ, msgspec.field(default=default, name=info.alias or name)))
        if info.alias:
            unset = msgspec.field(default=msgspec.UNSET, name=name)
            fields.append((f"{name}_by_name", typ | msgspec.UnsetType, unset))
    return msgspec.defstruct(f"{model.__name__}Struct", fields, kw_only=True, gc=False)


@dataclass(frozen=True)
class _Plan:
    """What turns one model's Struct into the model."""

    times: tuple[str, ...]
    by_name: tuple[str, ...]
    nested: tuple[tuple[str, type[BaseModel]], ...]
    fields: set[str]  # shared: frozen models never add to it, and copies copy it first

    @classmethod
    def of(cls, model: type[BaseModel]) -> _Plan:
        infos = model.model_fields.items()
        return cls(
            times=tuple(n for n, i in infos if i.annotation is AwareDatetime),
            by_name=tuple(f"{n}_by_name" for n, i in infos if i.alias),
            nested=tuple((n, m) for n, i in infos for m in _models_in(i.annotation)),
            fields=set(model.model_fields),
        )


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    return [a for a in (annotation, *get_args(annotation)) if _is_model(a)]


HOT = (Result, Feedback)
STRUCTS: dict[type[BaseModel], type[msgspec.Struct]] = {model: _mirror(model) for model in HOT}
"""The hot models and their typed mirrors, derived from the models."""
_DECODERS = {model: msgspec.json.Decoder(struct) for model, struct in STRUCTS.items()}
_PLANS: dict[type[BaseModel], _Plan] = {}
_asdict = msgspec.structs.asdict
_new = object.__new__
_set = object.__setattr__


def _built(model: type[M], fields: dict[str, Any], plan: _Plan) -> M:
    """``model`` holding ``fields`` (every field, already valid): what ``model_construct``
    does, without its pass over the fields (8 us a result). Every field counts as set."""
    instance = _new(model)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", plan.fields)
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def _model(model: type[M], struct: Any) -> M:
    plan = _PLANS.get(model) or _PLANS.setdefault(model, _Plan.of(model))
    fields = _asdict(struct)
    for name in plan.by_name:
        del fields[name]
    for name in plan.times:
        fields[name] = _utc(fields[name])
    for name, nested in plan.nested:
        if fields[name] is not None:
            fields[name] = _model(nested, fields[name])
    return _built(model, fields, plan)


def fast_decode(data: bytes | str | None, expect: type[M]) -> M:
    """What :func:`schemas.codec.decode` gives (the model, or the same
    :class:`DecodeError`); for results about 1.5-1.9x faster than pydantic (the model's
    construction is most of what is left: bench/bench_decode.py)."""
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
    with collection_paused():
        return [_slow(value, expect) for value in values]


_timestamps = msgspec.json.Decoder(list[Annotated[datetime, msgspec.Meta(tz=True)]]).decode
_SHORT = 29  # bytes of a timestamp with no room for a seventh fractional digit (_utc)


def fast_decode_structs(values: Sequence[bytes | str | None], expect: type[M]) -> list[Any]:
    """Per value of a hot model, its typed Struct (``STRUCTS[expect]``: the model's fields
    by their Python names, ``ts`` a UTC datetime) and no model; where the fast path leaves
    a value to pydantic, what :func:`fast_decode` gives (the model or the
    :class:`DecodeError`). The batch's timestamps are parsed in one call."""
    decoder = _DECODERS[expect]
    with collection_paused():
        try:
            out = list(map(decoder.decode, values))  # the rule: every value reads
        except (msgspec.DecodeError, TypeError):  # TypeError: no value
            out = [_struct(decoder, value) for value in values]
        readable = [s for s in out if s is not None] if None in out else out
        times = _times([struct.ts for struct in readable])
        for struct, ts in zip(readable, times, strict=True):
            struct.ts = ts
        if len(readable) < len(out) or None in times:
            out = [
                s if s is not None and s.ts is not None else _slow(value, expect)
                for s, value in zip(out, values, strict=True)
            ]
    return out


def fast_decode_batch(values: Sequence[bytes | str | None], expect: type[M]) -> list[Any]:
    """:func:`fast_decode_structs` for a hot model, :func:`fast_decode_many` for any other:
    per value a Struct or a model, read by the model's field names, or the
    :class:`DecodeError`."""
    if expect in _DECODERS:
        return fast_decode_structs(values, expect)
    return fast_decode_many(values, expect)


def _struct(decoder: msgspec.json.Decoder, value: bytes | str | None) -> Any:
    """The Struct ``decoder`` reads from ``value``, or None."""
    try:
        return decoder.decode(value)
    except (msgspec.DecodeError, TypeError):
        return None


def _slow(value: bytes | str | None, expect: type[M]) -> M | DecodeError:
    """What :func:`fast_decode` gives for ``value``: the model or the DecodeError."""
    try:
        return fast_decode(value, expect)
    except DecodeError as exc:
        return exc


def _times(raws: list[msgspec.Raw]) -> list[datetime | None]:
    """What :func:`_utc` gives for each of ``raws`` (None where it leaves it to pydantic),
    parsed in one call when none is longer than ``_SHORT``."""
    if raws and max(map(len, raws)) <= _SHORT:
        try:
            times = _timestamps(b"[" + b",".join(raws) + b"]")
            return [t if t.tzinfo is UTC else t.astimezone(UTC) for t in times]
        except (ValueError, OverflowError):
            pass  # read one by one, for which one
    out: list[datetime | None] = []
    for raw in raws:
        try:
            out.append(_utc(raw))
        except (ValueError, OverflowError):
            out.append(None)
    return out


@functools.cache
def _wire_names(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> wire name, for the fields whose differ."""
    return {n: i.alias for n, i in model.model_fields.items() if i.alias and i.alias != n}


def _wire(message: BaseModel) -> dict[str, Any]:
    """``message``'s fields by their wire names, in field order (msgspec's hook for
    models)."""
    fields, names = message.__dict__, _wire_names(type(message))
    return {names.get(n, n): v for n, v in fields.items()} if names else fields


@functools.cache
def _renamed_lead(model: type[BaseModel]) -> tuple[bytes, bytes] | None:
    """If the one field renamed on the wire is the first (the contract's ``schema``), how
    msgspec starts the model's fields, and how the wire form starts."""
    names = _wire_names(model)
    first = next(iter(model.model_fields))
    if list(names) != [first]:
        return None
    return f'{{"{first}":'.encode(), f'{{"{names[first]}":'.encode()


_encoder = msgspec.json.Encoder(enc_hook=_wire)


def fast_encode(message: BaseModel) -> bytes:
    """:func:`schemas.codec.encode`'s bytes, 2-3x faster; only a float of 1e16 or more
    is spelt otherwise (``1e16``, not ``1e+16``: the same number)."""
    lead = _renamed_lead(type(message))
    if lead is None:
        return _encoder.encode(_wire(message))
    return lead[1] + _encoder.encode(message.__dict__)[len(lead[0]) :]
