"""JSON Schema files of the contract, for producers written in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.internal import DeadLetter, Partial

PUBLIC: dict[str, type[BaseModel]] = {
    "result": Result,
    "feedback": Feedback,
    "rollout": RolloutEvent,
    "alert": Alert,
    "partial": Partial,
    "dlq": DeadLetter,
}


def json_schema(model: type[BaseModel]) -> dict:
    """The JSON Schema of ``model`` as it appears on the wire (contract field names)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def export(directory: Path) -> list[Path]:
    """Write ``<name>.v1.schema.json`` for every message type; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in PUBLIC.items():
        path = directory / f"{name}.v1.schema.json"
        path.write_text(json.dumps(json_schema(model), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
