"""``phasegate sql``'s output: CSV and JSON a tool reads, a table a person reads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from rich.console import Console

from sinks.sql import as_csv, as_json, as_table
from sinks.store import Rows

ROWS = Rows(
    ["t", "n", "rules", "u", "error"],
    [
        (datetime(2024, 5, 1, 12, tzinfo=UTC), 1, ["r1", "r2"], uuid.UUID(int=1), None),
        (datetime(2024, 5, 1, 12, 1, tzinfo=UTC), 2.5, [], uuid.UUID(int=2), "a,b"),
    ],
)


def test_csv_has_a_header_and_quotes_what_needs_it() -> None:
    assert as_csv(ROWS).splitlines() == [
        "t,n,rules,u,error",
        '2024-05-01T12:00:00+00:00,1,"[""r1"", ""r2""]",00000000-0000-0000-0000-000000000001,',
        '2024-05-01T12:01:00+00:00,2.5,[],00000000-0000-0000-0000-000000000002,"a,b"',
    ]


def test_json_is_an_array_of_objects_with_iso_times() -> None:
    first = json.loads(as_json(ROWS))[0]
    assert first == {
        "t": "2024-05-01T12:00:00+00:00",
        "n": 1,
        "rules": ["r1", "r2"],
        "u": "00000000-0000-0000-0000-000000000001",
        "error": None,
    }


def test_the_table_shows_null_and_escapes_markup() -> None:
    console = Console(width=200, record=True)
    console.print(as_table(Rows(["[b]x"], [(None,), ("[red]y",)])))
    text = console.export_text()
    assert "[b]x" in text and "NULL" in text and "[red]y" in text
