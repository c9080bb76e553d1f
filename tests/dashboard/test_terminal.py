"""``phasegate watch``: the terminal rendering of /status (pure), and a worker that is away."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from dashboard.terminal import render, unavailable
from phasegate.cli import app
from phasegate.stack import free_port
from schemas.metrics import METRICS
from tests.streams.status_sample import sample_status, trial_plan


def text_of(renderable: Any, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_figures_of_status_are_on_screen() -> None:
    status = sample_status()
    text = text_of(render(status))
    w = status["rollouts"]["kai-response"]["rolling"]["300"]["systems"]
    lines = {line.split("  ")[0].strip("│ "): line for line in text.splitlines()}
    assert "kai-response: last 5 min" in text
    assert "pipeline (baseline)" in text and "production (candidate)" in text
    sr = w["production"]["success_rate"]["value"]
    assert f"{w['pipeline']['success_rate']['value'] * 100:.1f}%" in lines["success rate"]
    assert f"{sr * 100:.1f}%" in lines["success rate"]
    assert f"{w['production']['p95_latency_ms']['value']:.0f} ms" in lines["P95 response time"]
    assert f"{w['production']['p90_latency_ms']['value']:.0f} ms" in lines["P90 response time"]
    assert f"{w['pipeline']['mean_confidence']['value']:.3f}" in lines["mean confidence"]
    assert all(m.title in lines for m in METRICS.values())  # every metric, by its title
    assert f"{w['production']['count']:,}" in lines["queries"]
    errors = w["production"]["errors"]
    assert all(f"{kind} {n}" in lines["errors by type"] for kind, n in errors.items())
    assert "winner so far: pipeline leads" in text
    assert "greeting" in text and "rules by use" in text
    assert "worker: results 800" in text


def test_window_and_rollout_choice() -> None:
    status = sample_status()
    assert "last 15 min" in text_of(render(status, span=900))
    assert "no events of rollout 'other' yet" in text_of(render(status, rollout="other"))
    assert "no events of any rollout yet" in text_of(render({"counters": {}, "rollouts": {}}))


def test_phase_and_gate_verdicts_from_the_control_section() -> None:
    status = sample_status()
    control = status["control"]["kai-response"]
    text = text_of(render(status), width=200)
    assert "worker: phase 1, weight 50%; open incidents: critical-error" in text
    assert f"gates of phase 1 (A/B test): {control['gates']['outcome']}" in text
    for verdict in control["gates"]["verdicts"]:
        assert verdict["criterion"] in text
    del status["control"]
    assert "gates of phase" not in text_of(render(status))


def test_gate_verdicts_mark_a_dry_run_and_the_time_left_of_min_duration() -> None:
    """What `phasegate watch` and `phasegate rollout status` print (one gate table)."""
    text = text_of(render(sample_status(plan=trial_plan())), width=200)
    assert "inconclusive (13d 23h left of min_duration)" in text
    assert "fail (dry-run)" in text


def test_unavailable_panel() -> None:
    assert "no worker here" in text_of(unavailable("no worker here"))


def test_watch_once_without_a_worker_says_so(monkeypatch) -> None:
    monkeypatch.setenv("PHASEGATE_WORKER_PORT", str(free_port()))
    result = CliRunner().invoke(app, ["watch", "--once"])
    assert result.exit_code == 1, result.output
    assert "no stream worker answers at http://127.0.0.1:" in result.output
    assert "phasegate worker" in result.output
    assert "Traceback" not in result.output
