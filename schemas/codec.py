"""The one codec every part uses: UTF-8 JSON bytes <-> contract models."""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar, overload

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.internal import DeadLetter, Partial

Message = Annotated[
    Result | Feedback | RolloutEvent | Alert | Partial | DeadLetter,
    Field(discriminator="schema_"),
]
_any = TypeAdapter(Message)
_MAX_ERRORS = 5
_ONE_BY_ONE = 8  # a batch this small that is not one JSON array is decoded message by message
_CHUNK = 100  # values per validator call: one call holds the GIL (0.5 ms, not 20 for 5,000)

M = TypeVar("M", bound=BaseModel)


class DecodeError(ValueError):
    """A message that is not valid contract v1; ``reason`` names the fields and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(message: BaseModel) -> bytes:
    """Serialise a model to the wire form (fields by their contract names)."""
    return message.model_dump_json(by_alias=True, exclude_none=False).encode()


@overload
def decode(data: bytes | str | None, expect: type[M]) -> M: ...
@overload
def decode(data: bytes | str | None, expect: None = None) -> BaseModel: ...
def decode(data: bytes | str | None, expect: type[M] | None = None) -> BaseModel:
    """Parse and strictly validate one message; raise :class:`DecodeError` if it is not.

    With ``expect`` the message must be of that model; without it, the ``schema`` field
    picks the model.
    """
    if data is None:
        raise DecodeError("empty message (no value)")
    try:
        if expect is not None:
            return expect.model_validate_json(data, strict=True)
        return _any.validate_json(data, strict=True)
    except ValidationError as exc:
        raise DecodeError(describe(exc)) from None
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None


@functools.cache
def _list_of(expect: type[BaseModel] | None) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[expect if expect is not None else Message])  # type: ignore[valid-type]


@contextmanager
def collection_paused() -> Iterator[None]:
    """No garbage collection meanwhile (the collector's settings are left alone).

    Thousands of new models trigger young collections that find them alive, and every
    few batches a full one walks the whole heap: measured, that more than doubles the
    cost of decoding (10 us a message instead of 4). Paused, the first collection after
    looks at them once.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def decode_many(
    values: Sequence[bytes | str | None], expect: type[M] | None = None
) -> list[M | DecodeError]:
    """Decode a batch: per value, what :func:`decode` gives for it alone (the model, or
    the :class:`DecodeError` it raises, same reason), with one validator call for the lot.

    The values are joined into one JSON array. Values that fail validation are decoded
    alone (for their own reasons) and the rest validated again; if the array is not JSON
    (a broken message) it is halved until the broken value is among a few decoded alone.
    So a message's outcome never depends on its neighbours. The garbage collector is
    paused meanwhile.
    """
    with collection_paused():
        return _decode_many(values, expect)


def _decode_many(
    values: Sequence[bytes | str | None], expect: type[M] | None
) -> list[M | DecodeError]:
    if len(values) > _CHUNK:  # let other threads (the consumer's network thread) run
        chunks = (values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK))
        return [d for chunk in chunks for d in _decode_many(chunk, expect)]
    if all(type(v) is bytes for v in values):
        return _decode_joined(values, expect)  # type: ignore[arg-type]
    joinable = [i for i, v in enumerate(values) if type(v) is bytes]
    out: list[Any] = [None if type(v) is bytes else _decode_or_error(v, expect) for v in values]
    _fill(out, joinable, _decode_joined([values[i] for i in joinable], expect))  # type: ignore[misc]
    return out


def _decode_or_error(data: bytes | str | None, expect: type[M] | None) -> M | DecodeError:
    try:
        return decode(data, expect)  # type: ignore[return-value]
    except DecodeError as exc:
        return exc


def _fill(out: list[Any], where: list[int], results: list[Any]) -> None:
    for i, result in zip(where, results, strict=True):
        out[i] = result


def _decode_joined(values: Sequence[bytes], expect: type[M] | None) -> list[M | DecodeError]:
    out: list[Any] = [None] * len(values)
    todo, batch = list(range(len(values))), list(values)  # positions in values; their values
    while len(batch) > _ONE_BY_ONE:
        models, failed = _validate_array(batch, expect)
        if models is not None and len(todo) == len(values):
            return models
        if models is not None:
            _fill(out, todo, models)
            return out
        if not failed:  # not one JSON array of these values: halve
            half = len(todo) // 2
            _fill(out, todo[:half], _decode_joined(batch[:half], expect))
            todo, batch = todo[half:], batch[half:]
            continue
        for k in failed:
            out[todo[k]] = _decode_or_error(batch[k], expect)
        kept = [k for k in range(len(todo)) if k not in failed]
        todo, batch = [todo[k] for k in kept], [batch[k] for k in kept]
    for i in todo:
        out[i] = _decode_or_error(values[i], expect)
    return out


def _validate_array(
    values: list[bytes], expect: type[BaseModel] | None
) -> tuple[list[Any] | None, set[int]]:
    """The models if every value is one valid item; else the items that failed (none if
    the array is not JSON, or a value held several items such as ``{...},{...}``)."""
    try:
        models = _list_of(expect).validate_json(b"[" + b",".join(values) + b"]", strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        locs = (err["loc"][0] for err in errors if err["loc"])
        return None, {k for k in locs if isinstance(k, int) and k < len(values)}
    return (models, set()) if len(models) == len(values) else (None, set())


def describe(exc: ValidationError) -> str:
    """One line per failing field: ``field.path: reason (got value)``."""
    lines = []
    for err in exc.errors(include_url=False)[:_MAX_ERRORS]:
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0].startswith("phasegate."):
            loc = loc[1:]  # the union's tag, not a field
        where = ".".join(loc) or "message"
        if err["type"] == "json_invalid":
            where = "json"
        elif err["type"] == "union_tag_invalid":
            where, got = "schema", err["input"].get("schema")
            lines.append(f"schema: unknown schema {_clip(got)}")
            continue
        elif err["type"] == "union_tag_not_found":
            lines.append("schema: field required (it names the message type)")
            continue
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {_clip(got)})"
        lines.append(f"{where}: {err['msg']}{shown}")
    more = exc.error_count() - _MAX_ERRORS
    if more > 0:
        lines.append(f"... and {more} more")
    return "; ".join(lines)


def _clip(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
