"""Contract models <-> columns of the store: one function per table, one way to flatten."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from operator import attrgetter
from typing import Any, TypeVar

from pydantic import BaseModel

from schemas.events import Alert, Feedback, Result, RolloutEvent
from sinks import ddl

Columns = dict[str, list[Any]]
M = TypeVar("M", bound=BaseModel)

TABLE_OF: dict[type[BaseModel], ddl.Table] = {
    Result: ddl.RESULTS,
    Feedback: ddl.FEEDBACK,
    Alert: ddl.ALERTS,
    RolloutEvent: ddl.ROLLOUT_EVENTS,
}
MODEL_OF: dict[str, type[BaseModel]] = {table.name: model for model, table in TABLE_OF.items()}


@functools.cache
def _paths(model: type[BaseModel], names: tuple[str, ...]) -> list[tuple[str | None, str | None]]:
    """Per column: the model's field, and the nested model's field (``error_type``)."""
    fields = model.model_fields
    paths: list[tuple[str | None, str | None]] = []
    for name in names:
        if name in fields:
            paths.append((name, None))
            continue
        parent = next((f for f in fields if name.startswith(f + "_")), None)
        paths.append((parent, name[len(parent) + 1 :] if parent else None))
    return paths


def columns(models: Iterable[Any], table: ddl.Table) -> Columns:
    """The table's columns from ``models``: its model's, or anything with their field
    names (``schemas.fastcodec`` Structs); a ``None`` nested model (``error``) gives
    NULLs. Fields are read column by column: no dict per row."""
    models = list(models)
    if not models:
        return {name: [] for name in table.column_names}
    names = tuple(table.column_names)
    out: Columns = {}
    nested: dict[str, list[Any]] = {}  # the nested models, read once for all their columns
    for name, (field, sub) in zip(names, _paths(MODEL_OF[table.name], names), strict=True):
        if field is None:
            out[name] = [None] * len(models)
        elif name in table.json_columns:
            out[name] = [_json(v) for v in map(attrgetter(field), models)]
        elif sub is None:
            out[name] = list(map(attrgetter(field), models))
        else:
            if field not in nested:
                nested[field] = list(map(attrgetter(field), models))
            out[name] = [None if p is None else getattr(p, sub) for p in nested[field]]
    return out


def _json(items: list[BaseModel]) -> str:
    return json.dumps([item.model_dump(mode="json") for item in items])


def model_of(model: type[M], row: Mapping[str, Any]) -> M:
    """The model a row of its table holds: the inverse of :func:`columns` (a nested model
    whose columns are all NULL is None; a column the row lacks keeps the field's default)."""
    table = TABLE_OF[model]
    names = tuple(table.column_names)
    fields: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, (field, sub) in zip(names, _paths(model, names), strict=True):
        if field is None or name not in row:
            continue
        if name in table.json_columns:
            fields[field] = json.loads(row[name] or "[]")
        elif sub is None:
            fields[field] = row[name]
        else:
            nested.setdefault(field, {})[sub] = row[name]
    for field, parts in nested.items():
        fields[field] = parts if any(v is not None for v in parts.values()) else None
    return model.model_validate(fields)


def result_columns(results: Iterable[Result]) -> Columns:
    return columns(results, ddl.RESULTS)


def feedback_columns(feedback: Iterable[Feedback]) -> Columns:
    return columns(feedback, ddl.FEEDBACK)


def alert_columns(alerts: Iterable[Alert]) -> Columns:
    return columns(alerts, ddl.ALERTS)


def rollout_columns(events: Iterable[RolloutEvent]) -> Columns:
    return columns(events, ddl.ROLLOUT_EVENTS)
