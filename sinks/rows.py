"""Contract models -> columns for the store: one function per table, one way to flatten."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from operator import attrgetter
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


def columns(models: Iterable[BaseModel], table: ddl.Table) -> Columns:
    """The table's columns from ``models`` (one model type); a ``None`` nested model
    (``error``) gives NULLs. Fields are read column by column: no dict per row."""
    models = list(models)
    if not models:
        return {name: [] for name in table.column_names}
    names = tuple(table.column_names)
    out: Columns = {}
    nested: dict[str, list[Any]] = {}  # the nested models, read once for all their columns
    for name, (field, sub) in zip(names, _paths(type(models[0]), names), strict=True):
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


def result_columns(results: Iterable[Result]) -> Columns:
    return columns(results, ddl.RESULTS)


def feedback_columns(feedback: Iterable[Feedback]) -> Columns:
    return columns(feedback, ddl.FEEDBACK)


def alert_columns(alerts: Iterable[Alert]) -> Columns:
    return columns(alerts, ddl.ALERTS)


def rollout_columns(events: Iterable[RolloutEvent]) -> Columns:
    return columns(events, ddl.ROLLOUT_EVENTS)
