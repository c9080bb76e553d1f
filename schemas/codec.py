"""The one codec every part uses: UTF-8 JSON bytes <-> contract models."""

from __future__ import annotations

from typing import Annotated, TypeVar, overload

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.internal import DeadLetter, Partial

Message = Annotated[
    Result | Feedback | RolloutEvent | Alert | Partial | DeadLetter,
    Field(discriminator="schema_"),
]
_any = TypeAdapter(Message)
_MAX_ERRORS = 5

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
def decode(data: bytes | str, expect: type[M]) -> M: ...
@overload
def decode(data: bytes | str, expect: None = None) -> BaseModel: ...
def decode(data: bytes | str, expect: type[M] | None = None) -> BaseModel:
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
