"""Each ``phasegate rollout`` command decides on the state the previous one left, round
after round, while another process loads the machine (the stale-state race)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from phasegate.cli import app
from rollout.log import RolloutLog

pytestmark = pytest.mark.timeout(120)

ROUNDS = 30
STEPS = [  # a command and the (phase, weight) the log's fold must show after it
    (("start",), (1, 50)),
    (("set-weight", "75"), (1, 75)),  # refused ("next step is 50%") on a stale phase 0
    (("promote", "--force", "--reason", "loop"), (2, 75)),  # refused if not running
    (("rollback", "--reason", "loop"), (0, 0)),  # the next start is refused on a stale 2
]


@pytest.fixture
def busy():
    """A process that keeps one core busy for the length of the test."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    proc.kill()
    proc.wait()


def test_every_command_decides_on_the_state_the_previous_one_left(
    kafka_settings, monkeypatch, busy
):
    for name, value in kafka_settings.to_env().items():
        monkeypatch.setenv(name, value)
    runner, log = CliRunner(), RolloutLog(kafka_settings)
    started = time.monotonic()
    with log.follower:
        for round_ in range(ROUNDS):
            for args, expected in STEPS:
                result = runner.invoke(app, ["rollout", *args, "-r", "kai", "--actor", "t"])
                assert result.exit_code == 0, (round_, args, result.output)
                written = round_ * len(STEPS) + STEPS.index((args, expected)) + 1
                deadline = time.monotonic() + 10
                while len(log.state("kai").history) < written and time.monotonic() < deadline:
                    time.sleep(0.01)
                state = log.state("kai")
                assert (len(state.history), state.phase, state.weight) == (written, *expected)
    print(f"{ROUNDS * len(STEPS)} commands in {time.monotonic() - started:.1f} s")
