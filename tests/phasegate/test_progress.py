"""Long commands show done, rate and time left on a terminal, and nothing elsewhere."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from phasegate.progress import progress_bar


def test_a_terminal_sees_the_count_the_rate_and_the_time_left():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with progress_bar(console, "replay", "messages") as bar:
        task = bar.add_task("replay", total=None)
        for done in (0, 2_000, 4_000):
            bar.update(task, completed=done, total=10_000)
            time.sleep(0.05)
        bar.refresh()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # without colours
    assert "replay" in text and "4000/10000" in text
    assert re.search(r" \d[\d,]* messages/s 0:00:\d\d", text)  # a rate and the time left


def test_piped_output_gets_no_bar():
    out = io.StringIO()
    console = Console(file=out, width=120)  # not a terminal
    with progress_bar(console, "replay", "messages") as bar:
        assert bar.disable
        task = bar.add_task("replay", total=10)
        bar.update(task, completed=5)
    assert out.getvalue() == ""


def test_a_short_run_gets_no_bar_on_a_terminal_either():
    console = Console(file=io.StringIO(), force_terminal=True)
    assert progress_bar(console, "simulate", "generations", shown=False).disable
