"""Every command's help names its options and says what they do, without Python types."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from phasegate.cli import app

TYPE_TAG = re.compile(r"<(bool|int|float|str|text|path|datetime|uuid)\b[^>]*>|<[a-z|]+>")


def command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """``path`` and the path of every command below it (a group has ``commands``)."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*path, name))
    return paths


def test_no_help_text_shows_a_type_tag():
    paths = command_paths(typer.main.get_command(app))
    assert len(paths) > 20 and ("rollout", "set-weight") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.output, path
        assert not TYPE_TAG.search(result.output), (path, TYPE_TAG.search(result.output))


def test_a_declared_metavar_still_shows():
    probe = typer.Typer()

    @probe.command()
    def one(last: int = typer.Option(5, metavar="N"), final: bool = False) -> None:
        """Probe."""

    text = CliRunner().invoke(probe, ["--help"], terminal_width=200).output
    assert re.search(r"--last\s+N\b", text) and "<" not in text
