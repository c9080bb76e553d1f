"""Progress of long commands (replay, large simulate): done, rate and time left.

Shown only on a terminal: piped or captured output gets the commands' summary lines alone.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Completed units per second (rich's estimate over the last 30 s)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"? {self.unit}/s")


def progress_bar(console: Console, what: str, unit: str, shown: bool = True) -> Progress:
    """A bar that disappears when done: what, the bar, percent, done of total, rate and
    time left; disabled unless ``shown`` and ``console`` is a terminal."""
    return Progress(
        TextColumn(what),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (shown and console.is_terminal),
    )
