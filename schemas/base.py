"""Shared pieces of every contract model: strictness, the ``schema`` tag, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00: a ValueError is a reason, not a crash
        raise ValueError("out of range once in UTC (years 1 to 9999)") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An ISO-8601 timestamp with a zone, normalised to UTC; a naive one is refused."""

Name = Annotated[str, Field(min_length=1, max_length=256)]
"""A short identifier such as a rollout id, system name or rule name."""


def now() -> datetime:
    return datetime.now(UTC)


class ContractModel(BaseModel):
    """Base of every message model.

    Unknown fields are ignored (contract v1 may gain fields, never rename them). The
    codec validates the wire strictly (no ``"1"`` for ``1``, no NaN or infinity); models
    built in Python accept the usual conversions (a UUID as a string, an int as a float).
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
        populate_by_name=True,
        ser_json_inf_nan="null",
    )


def event_id() -> UUID:
    return uuid4()


EventId = Annotated[UUID, Field(default_factory=event_id)]
