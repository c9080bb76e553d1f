"""Webhook delivery (timeout, retries, counted failures) and the plan's announcements."""

from __future__ import annotations

import json
import signal
import time
import urllib.error

import pytest

from phasegate.notify import Notifier, Webhook, announcement
from phasegate.stack import free_port
from phasegate.testing.processes import NotifyProcess, wait_for
from phasegate.testing.webhook import Receiver
from schemas.events import Alert, AlertWindow, Contributor, RolloutEvent
from schemas.plan import load_plan
from schemas.settings import Settings

STOP_S = 5.0  # the longest a stop may take, broker or not


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_retries_with_backoff_until_the_receiver_accepts(receiver):
    r, sleeps = receiver(fail=2), []
    hook = Webhook(r.url, attempts=4, backoff_s=0.1, sleep=sleeps.append)
    assert hook.deliver({"hello": "world"})
    assert r.bodies == [{"hello": "world"}]
    assert (hook.sent, hook.failed, hook.retries) == (1, 0, 2)
    assert sleeps == [0.1, 0.2]


def test_a_dead_or_slow_receiver_is_counted_and_logged_not_raised(receiver, caplog):
    slow = receiver(delay=1.0)
    hook = Webhook(slow.url, timeout_s=0.2, attempts=2, sleep=lambda s: None)
    assert not hook.deliver({"x": 1})
    dead = Webhook("http://127.0.0.1:9/none", attempts=3, sleep=lambda s: None)
    assert not dead.deliver({"x": 1})
    assert (hook.failed, dead.failed, dead.retries) == (1, 1, 2)
    assert "failed after 3 attempts" in caplog.text


def test_phase_changes_become_the_seeds_announcements():
    plan = load_plan()
    start = RolloutEvent(rollout="kai", type="phase_started", weight=75, phase=2, actor="alice")
    note = announcement(plan, start)
    assert note["kind"] == "phase_started" and note["weight"] == 75
    assert note["text"]["de"].startswith("Basierend auf positivem Feedback")
    assert "75%" in note["text"]["en"]
    back = RolloutEvent(rollout="kai", type="rollback", weight=0, phase=0, actor="w")
    assert "alte Response-System reaktiviert" in announcement(plan, back)["text"]["de"]
    assert announcement(plan, RolloutEvent(rollout="kai", type="decision")) is None
    steady = RolloutEvent(rollout="kai", type="phase_started", weight=100, phase=4)
    assert announcement(plan, steady) is None  # the plan has no text for phase 4


def test_notifier_sends_alerts_and_announcements_of_its_rollout_only():
    sent = []
    hook = Webhook("http://x", post=lambda url, body, t: sent.append(json.loads(body)) or 200)
    notifier = Notifier(hook, load_plan(), rollout="kai")
    start = RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1)
    assert notifier.handle(start) is True
    assert notifier.handle(start.model_copy(update={"rollout": "other"})) is None
    assert [s["kind"] for s in sent] == ["phase_started"]
    assert "50%" in sent[0]["text"]["de"]
    alert = Alert(
        rollout="kai",
        system="production",
        severity="critical",
        kind="critical_error",
        metric="critical_errors",
        observed=1,
        threshold=0,
        samples=10,
        window=AlertWindow(start=start.ts, end=start.ts),
        contributors=[
            Contributor(dimension="error_type", value="oom", candidate=41, baseline=3, expected=2.1)
        ],
    )
    assert notifier.handle(alert) is True
    assert notifier.handle(alert) is None  # raised again by a replay: not posted twice
    assert [s["kind"] for s in sent] == ["phase_started", "critical_error"]
    assert sent[1]["contributors"][0]["value"] == "oom"
    assert sent[1]["text"].endswith(
        "why: error_type oom: 41 candidate vs 3 baseline (expected 2.1)"
    )


def test_http_errors_are_not_exceptions():
    def boom(url, body, timeout):
        raise urllib.error.HTTPError(url, 500, "no", None, None)

    assert not Webhook("http://x", post=boom, attempts=1).deliver({})


def test_notify_stops_on_sigterm_while_the_broker_is_unreachable(tmp_path):
    """No broker: the consumer cannot connect; SIGTERM still stops it within seconds,
    with exit 0 and its counters (the connection is retried, not fatal)."""
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", state_dir=tmp_path)
    notify = NotifyProcess(settings, "http://127.0.0.1:9/none", tmp_path / "notify.log", 1.0)
    notify.start()
    try:
        wait_for(lambda: "notifying" in notify.tail(), "its start", 60, notify)
        time.sleep(1.0)  # connecting
        began = time.monotonic()
        counters = notify.counters()
        took = time.monotonic() - began
    finally:
        notify.stop(signal.SIGKILL)
    assert counters == {"sent": 0, "failed": 0, "retries": 0, "exit": 0}, notify.tail()
    assert took < STOP_S, notify.tail()
    assert "Traceback" not in notify.tail(1000)
