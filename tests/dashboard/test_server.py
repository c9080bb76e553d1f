"""The dashboard over HTTP: page and assets, the JSON API, the token and the weight control.

A real broker carries the rollout log and the alerts; the worker's /status is the sample
status (``fetch`` injected), or a port where nothing answers.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaProducer

from dashboard.server import ASSETS, make_server, serve_in_thread
from dashboard.service import Dashboard
from phasegate.stack import free_port
from rollout.writer import RolloutWriter
from schemas.alert_text import evidence
from schemas.codec import encode
from schemas.events import Contributor, RolloutEvent
from schemas.settings import Settings
from tests.dashboard.test_feeds import alert as feeds_alert
from tests.streams.status_sample import sample_status

TOKEN = "s3cret-token"


def request(
    url: str, body: Any = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=data, headers={**hdrs, **(headers or {})}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class Running:
    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.board = Dashboard(settings, **kwargs).start()
        self.server = make_server(self.board, "127.0.0.1", 0)
        serve_in_thread(self.server)
        self.url = self.server.url.rstrip("/")
        assert self.board.rollout_log.follower.caught_up.wait(15)

    def json(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        code, _, body = request(self.url + path, **kwargs)
        return code, json.loads(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.board.close()


@pytest.fixture
def board(kafka_settings: Settings) -> Iterator[Running]:
    writer = RolloutWriter(kafka_settings)
    writer.append(RolloutEvent(rollout="kai-response", type="weight_set", weight=50, actor="t"))
    running = Running(kafka_settings, fetch=lambda s, rollout=None: sample_status(), writer=writer)
    yield running
    running.close()


def wait_state(board: Running, weight: int | None = None, phase: int | None = None) -> bool:
    """Wait until the dashboard's fold of the rollout log has this weight and/or phase."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = board.board.rollout_log.state("kai-response")
        if weight in (None, state.weight) and phase in (None, state.phase):
            return True
        time.sleep(0.05)
    return False


def test_page_and_assets_are_local(board: Running) -> None:
    code, headers, page = request(board.url + "/")
    assert b"/static/app.js" in page
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name in ASSETS:
        code, headers, body = request(f"{board.url}/static/{name}")
        assert code == 200 and headers["Content-Type"] == ASSETS[name]
        urls = set(re.findall(rb"https?://[^\s\"'`)]+", body))
        assert urls <= {b"http://www.w3.org/2000/svg"}, f"{name} loads from elsewhere: {urls}"
    assert request(board.url + "/static/../server.py")[0] == 404
    assert request(board.url + "/nope")[0] == 404


def test_summary_has_figures_state_and_winner(board: Running) -> None:
    assert wait_state(board, weight=50)
    code, data = board.json("/api/summary?span=900")
    assert code == 200
    assert data["worker"]["ok"] and data["worker"]["counters"]["results"] == 800
    (r,) = data["rollouts"]
    assert r["span"] == 900 and r["spans"] == [300, 900]
    assert [s["system"] for s in r["systems"]] == ["pipeline", "production"]
    assert r["systems"][1]["count"] == 400
    assert r["winner"]["decided"] and r["winner"]["system"] == "pipeline"
    assert r["state"]["weight"] == 50 and r["state"]["next_weight"] == 75
    assert (r["state"]["quick_weights"], r["state"]["max_weight"]) == ([0, 50, 75, 100], 75)
    assert r["state"]["weights"][-1]["weight"] == 50
    assert r["rules"][0]["uses"] == 400
    assert len(r["series"]["production"]) == 10


def test_weight_control(board: Running) -> None:
    assert wait_state(board, weight=50)
    path = "/api/rollouts/kai-response/set_weight"
    code, data = board.json(path, body={"weight": 100})
    assert code == 422 and data["error"].endswith("from 50% the next step is 75%, not 100%")
    code, data = board.json(path, body={"weight": 150})
    assert code == 422 and "from 0 to 100" in data["error"]
    code, data = board.json(path, body={"weight": 0})
    assert code == 422 and "needs confirmation" in data["error"]
    code, data = board.json(path, body={"weight": 75, "actor": "ana", "reason": "phase 1 ok"})
    assert code == 200, data
    assert data["event"]["weight"] == 75 and data["event"]["actor"] == "ana"
    assert wait_state(board, weight=75)
    rollback = "/api/rollouts/kai-response/rollback"
    code, data = board.json(rollback, body={"confirm": True})
    assert code == 422 and data["error"] == "a rollback needs a reason"
    code, data = board.json(rollback, body={"confirm": True, "reason": "errors"})
    assert code == 200 and data["event"]["type"] == "rollback"
    assert wait_state(board, weight=0)
    history = board.board.rollout_log.state("kai-response").history
    assert [(e.type, e.weight) for e in history] == [
        ("weight_set", 50),
        ("weight_set", 75),
        ("rollback", 0),
    ]


def test_bad_requests(board: Running) -> None:
    url = board.url + "/api/rollouts/kai-response/set_weight"
    code, _, body = request(
        url, b"weight=75", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert code == 415 and b"application/json" in body
    code, _, body = request(url, b"[1, 2]")
    assert code == 400 and b"JSON object" in body
    code, _, body = request(url, b"{not json")
    assert code == 400
    code, _, body = request(url, {"weight": 75}, {"Origin": "http://evil.example"})
    assert code == 403 and b"evil.example" in body
    code, _, _ = request(board.url + "/api/elsewhere", {"weight": 75})
    assert code == 404
    code, _, body = request(board.url + "/api/rollouts/kai-response/jump", {})
    assert code == 422 and b"unknown action" in body
    assert board.board.rollout_log.state("kai-response").weight == 50


def test_token(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"dashboard_token": TOKEN})
    board = Running(settings, fetch=lambda s, rollout=None: sample_status())
    try:
        assert request(board.url + "/")[0] == 200, "the page itself holds no data"
        code, data = board.json("/api/summary")
        assert code == 401 and "token" in data["error"]
        code, _ = board.json("/api/summary", headers={"X-Phasegate-Token": "wrong"})
        assert code == 401
        code, data = board.json("/api/summary", headers={"X-Phasegate-Token": TOKEN})
        assert code == 200 and data["rollouts"]
        path = "/api/rollouts/kai-response/set_weight"
        code, _ = board.json(path, body={"weight": 50})
        assert code == 401
        code, data = board.json(path, body={"weight": 50}, headers={"X-Phasegate-Token": TOKEN})
        assert code == 200 and data["event"]["weight"] == 50
    finally:
        board.close()


def test_worker_not_answering(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"worker_port": free_port()})
    board = Running(settings)
    try:
        code, data = board.json("/api/summary")
        assert code == 200 and not data["worker"]["ok"]
        assert (
            f"no stream worker answers at http://127.0.0.1:{settings.worker_port}/status"
            in (data["worker"]["error"])
        )
        assert data["rollouts"] == []
        code, data = board.json("/api/status")
        assert code == 502 and "phasegate worker" in data["error"]
    finally:
        board.close()


def test_promote_is_the_go_decision(board: Running) -> None:
    """The sample's phase-1 gates fail: promote is refused unless overridden with a reason."""
    path = "/api/rollouts/kai-response/promote"
    code, data = board.json(path, body={})
    assert code == 422 and data["error"] == "kai-response is not running; start begins phase 1"
    code, data = board.json("/api/rollouts/kai-response/start", body={})
    assert code == 200 and (data["event"]["phase"], data["event"]["weight"]) == (1, 50)
    assert wait_state(board, phase=1)
    code, data = board.json(path, body={})
    assert code == 422 and data["error"].startswith("the gates of phase 1 are fail")
    code, data = board.json(path, body={"force": True})
    assert code == 422 and data["error"] == "overriding the gates needs a reason"
    code, data = board.json(path, body={"force": True, "reason": "known flaky check"})
    assert code == 200
    assert (data["event"]["type"], data["event"]["phase"], data["event"]["weight"]) == (
        "phase_started",
        2,
        75,
    )
    code, data = board.json("/api/summary")
    gates = data["rollouts"][0]["gates"]
    assert gates["outcome"] == "fail" and data["rollouts"][0]["incidents"] == ["critical-error"]


def test_an_alert_shows_why(board: Running, kafka_settings: Settings) -> None:
    de = Contributor(dimension="segment", value="de", candidate=38, baseline=1, expected=1.46)
    alert = feeds_alert("kai-response").model_copy(update={"contributors": [de]})
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    producer.send(kafka_settings.topics.alerts, value=encode(alert))
    producer.flush()
    producer.close()
    deadline = time.monotonic() + 10
    while not board.board.alert_log.recent("kai-response") and time.monotonic() < deadline:
        time.sleep(0.05)
    _, data = board.json("/api/summary")
    (shown,) = data["rollouts"][0]["alerts"]
    assert shown["why"] == "segment de: 38 candidate vs 1 baseline (expected 1.5)"
    assert shown["evidence"] == evidence(alert)
    assert shown["contributors"][0]["candidate"] == 38
