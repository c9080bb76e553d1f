"""``phasegate sql``: an ad-hoc statement on the history, wherever it lives."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.settings import Settings
from sinks.cli import errors, open_history
from sinks.store import Rows, StoreError

console = Console(soft_wrap=True)


class SqlFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _plain(value: Any) -> Any:
    """A value as JSON and CSV write it: times in ISO-8601, anything else unknown as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _cell(value: Any) -> Any:
    """A value in one CSV or table cell: a list as JSON."""
    plain = _plain(value)
    return json.dumps(plain) if isinstance(plain, list) else plain


def as_csv(rows: Rows) -> str:
    """A header line, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows.columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def as_json(rows: Rows) -> str:
    """An array of objects, one per row."""
    return json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows.dicts()]) + "\n"


def as_table(rows: Rows) -> Table:
    table = Table(box=None, header_style="bold")
    for name in rows.columns:
        table.add_column(escape(name))
    for row in rows:
        table.add_row(*(escape("NULL" if v is None else str(_cell(v))) for v in row))
    return table


def sql(
    statement: str = typer.Argument(
        ..., help='e.g. "SELECT system, count() FROM phasegate.results GROUP BY system"'
    ),
    fmt: SqlFormat = typer.Option(SqlFormat.table, "--format", "-f", help="table, csv or json"),
) -> None:
    """Run a statement on the history, wherever it lives; print its rows."""
    settings = Settings()
    with open_history(settings, reading=True) as store:
        try:
            rows = store.query(statement)
        except StoreError as exc:
            errors.print(f"[red]sql:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
    if fmt is SqlFormat.table:
        console.print(as_table(rows))
        errors.print(f"{len(rows)} rows")
    else:
        text = as_csv(rows) if fmt is SqlFormat.csv else as_json(rows)
        console.print(text, markup=False, highlight=False, end="")
