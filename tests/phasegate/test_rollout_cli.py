"""``phasegate rollout`` and ``alerts tail`` on a real broker: the log is the state."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from phasegate.cli import app
from phasegate.rollout_cli import read_state
from schemas.alert_text import evidence, headline
from schemas.codec import encode
from schemas.events import Alert, AlertWindow, Contributor, Figure
from tests.rollout import TEN_TO_HUNDRED
from tests.streams.conftest import T0

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cli(kafka_settings, monkeypatch):
    for name, value in kafka_settings.to_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("USER", "alice")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_the_rollout_log_walks_the_plan_and_refuses_what_it_does_not_allow(cli, kafka_settings):
    cli("rollout", "promote", "-r", "kai", code=1)  # not started
    assert "start" in cli("rollout", "promote", "-r", "kai", code=1)
    cli("rollout", "start", "-r", "kai")
    assert "running phase 1" in cli("rollout", "start", "-r", "kai", code=1)
    assert "next step is 75%" in cli("rollout", "set-weight", "100", "-r", "kai", code=1)
    # no worker: the gates cannot be read, so no go without --force (and a reason)
    assert "gates cannot be read" in cli("rollout", "promote", "-r", "kai", code=1)
    assert "needs a reason" in cli("rollout", "promote", "-r", "kai", "--force", code=1)
    cli("rollout", "promote", "-r", "kai", "--force", "--reason", "tested offline")
    cli("rollout", "hold", "-r", "kai", "--reason", "wait for Monday", "--actor", "bob")
    cli("rollout", "rollback", "-r", "kai", code=2)  # --reason is required
    cli("rollout", "rollback", "-r", "kai", "--to-phase", "1", "--reason", "latency")
    state = read_state(kafka_settings, "kai")
    assert (state.phase, state.weight) == (1, 50)
    cli("rollout", "rollback", "-r", "kai", "--reason", "errors")
    state = read_state(kafka_settings, "kai")
    assert (state.phase, state.weight) == (0, 0)
    history = [(e.type, e.weight, e.phase, e.actor) for e in state.history]
    assert history == [
        ("phase_started", 50, 1, "alice"),
        ("phase_started", 75, 2, "alice"),
        ("decision", None, None, "bob"),
        ("rollback", 50, 1, "alice"),
        ("rollback", 0, 0, "alice"),
    ]
    status = json.loads(cli("rollout", "status", "-r", "kai", "--json"))
    assert (status["phase"], status["weight"], len(status["history"])) == (0, 0, 5)
    assert status["history"][2]["reason"] == "wait for Monday"
    text = cli("rollout", "status", "-r", "kai")
    assert "not running" in text and "no stream worker answers" in text
    cli("rollout", "start", "-r", "kai")  # a restart after the rollback begins at phase 1
    assert read_state(kafka_settings, "kai").weight == 50


def test_a_10_25_50_100_plan_walks_every_phase_and_steps_back(cli, kafka_settings):
    plan = ("--plan", str(TEN_TO_HUNDRED))

    def step(*args: str, to: tuple[int, int], code: int = 0) -> str:
        output = cli("rollout", *args, "-r", "ten", *plan, code=code)
        state = read_state(kafka_settings, "ten")
        assert (state.phase, state.weight) == to, output
        return output

    step("start", to=(1, 10))
    assert "next step is 25%" in step("set-weight", "50", to=(1, 10), code=1)
    step("set-weight", "25", to=(1, 25))
    for phase, weight in ((2, 25), (3, 50), (4, 100)):
        step("promote", "--force", "--reason", "no worker here", to=(phase, weight))
    last = step("promote", "--force", "--reason", "again", to=(4, 100), code=1)
    assert "already in the plan's last phase (4)" in last
    step("rollback", "--to-phase", "2", "--reason", "p95 over 250 ms", to=(2, 25))
    refused = step("rollback", "--to-phase", "3", "--reason", "up?", to=(2, 25), code=1)
    assert "allowed: 1), not phase 3 (50%)" in refused
    step("rollback", "--reason", "errors", to=(0, 0))
    history = [(e.type, e.phase, e.weight) for e in read_state(kafka_settings, "ten").history]
    assert history == [
        ("phase_started", 1, 10),
        ("weight_set", None, 25),
        ("phase_started", 2, 25),
        ("phase_started", 3, 50),
        ("phase_started", 4, 100),
        ("rollback", 2, 25),
        ("rollback", 0, 0),
    ]


def _alert(**changes) -> Alert:
    fields = {
        "rollout": "kai",
        "system": "production",
        "severity": "critical",
        "kind": "emergency_rollback",
        "metric": "success_rate",
        "observed": 0.82,
        "threshold": 0.9,
        "window": AlertWindow(start=T0, end=T0),
        "samples": 240,
    }
    return Alert(**{**fields, **changes})


def test_alerts_tail_prints_each_alert_once(cli, kafka_settings):
    alert = _alert(
        contributors=[
            Contributor(dimension="segment", value="de", candidate=38, baseline=1, expected=1.46),
            Contributor(dimension="rule", value="r7", candidate=9, baseline=0, expected=0.0),
        ],
    )
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    for _ in range(2):  # a redelivery
        producer.send(kafka_settings.topics.alerts, key=b"kai", value=encode(alert))
    producer.flush()
    producer.close()
    lines = cli("alerts", "tail", "--json", "--no-follow").strip().splitlines()
    assert [json.loads(line)["alert_id"] for line in lines] == [str(alert.alert_id)]
    text = cli("alerts", "tail", "--no-follow")
    assert "CRITICAL emergency_rollback kai/production: success_rate 0.82 (limit 0.9)" in text
    assert (
        "why: segment de: 38 candidate vs 1 baseline (expected 1.5); "
        "rule r7: 9 candidate vs 0 baseline (expected 0.0)"
    ) in text


def test_an_alert_line_marks_dry_runs_and_the_cause():
    alert = _alert(kind="rollback_held", observed=0.6, dry_run=True, attribution="shared")
    assert "CRITICAL dry-run rollback_held [shared] kai/production" in headline(alert)


def test_an_alert_line_shows_its_window_and_both_systems_figures():
    alert = _alert(
        window=AlertWindow(start=T0, end=T0 + timedelta(minutes=2)),
        figures=[
            Figure(system="production", value=0.82, low=0.77, high=0.86, samples=240),
            Figure(system="pipeline", value=0.974, low=0.95, high=0.99, samples=231),
        ],
    )
    text = evidence(alert)
    assert text == (
        f"window {T0:%H:%M:%S}-{T0 + timedelta(minutes=2):%H:%M:%S}: "
        "production 0.82 (0.77-0.86) over 240 events, pipeline 0.974 (0.95-0.99) over 231"
    )
    assert text in headline(alert)
    assert evidence(_alert()) == f"window {T0:%H:%M:%S}-{T0:%H:%M:%S}"
