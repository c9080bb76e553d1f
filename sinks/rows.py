"""Contract models -> columns for the store: one function per table, one way to flatten."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from schemas.events import Alert, Feedback, Result, RolloutEvent
from sinks import ddl

Columns = dict[str, list[Any]]

TABLE_OF: dict[type[BaseModel], ddl.Table] = {
    Result: ddl.RESULTS,
    Feedback: ddl.FEEDBACK,
    Alert: ddl.ALERTS,
    RolloutEvent: ddl.ROLLOUT_EVENTS,
}


def flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Fields by name, nested models spread as ``parent_child`` (``error_type``)."""
    flat: dict[str, Any] = {}
    for name, value in vars(model).items():
        if isinstance(value, BaseModel):
            flat.update(flatten(value, f"{prefix}{name}_"))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def columns(models: Iterable[BaseModel], table: ddl.Table) -> Columns:
    """The table's columns from ``models``; a nested model that is ``None`` gives NULLs."""
    flat = [flatten(m) for m in models]
    return {name: [row.get(name) for row in flat] for name in table.column_names}


def result_columns(results: Iterable[Result]) -> Columns:
    return columns(results, ddl.RESULTS)


def feedback_columns(feedback: Iterable[Feedback]) -> Columns:
    return columns(feedback, ddl.FEEDBACK)


def alert_columns(alerts: Iterable[Alert]) -> Columns:
    return columns(alerts, ddl.ALERTS)


def rollout_columns(events: Iterable[RolloutEvent]) -> Columns:
    return columns(events, ddl.ROLLOUT_EVENTS)
