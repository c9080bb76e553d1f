"""The dashboard in a real browser: headless Chromium (Debian's) driven by Selenium.

A real worker and broker, phase 1 started at 50%, simulated traffic through the real
Router and Emitter, the dashboard with a token. The page's figures and gate verdicts must
match the worker's /status; promote is refused while the gates do not pass; 100% (two
phases up) is not offered; clicking 75% must put a weight_set event in the rollout topic that
a Router follows; a rollback asks for confirmation. The screenshot is kept at
``artifacts/dashboard.png``. A plan with phases at 10/25/50/100% is walked through every
phase and a partial rollback on the page. Skipped where Chromium is not installed, failed
under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from dashboard import summary
from dashboard.server import make_server, serve_in_thread
from dashboard.service import Dashboard
from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import read_values
from producers import Router, live
from rollout.writer import RolloutWriter
from schemas.alert_text import evidence, why
from schemas.codec import decode, encode
from schemas.events import Contributor, Figure, RolloutEvent
from schemas.metrics import METRICS
from schemas.plan import load_plan
from schemas.settings import Settings
from tests.dashboard.test_feeds import alert as feeds_alert
from tests.rollout import TEN_TO_HUNDRED
from tests.streams.status_sample import sample_status, trial_plan

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "artifacts" / "dashboard.png"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ROLLOUT, TOKEN = "kai-response", "browser-test-token"
EVENTS = 1600  # about 800 candidate results: under phase 1's minimum sample of 1000
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2000",
]


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        reason = (
            f"no browser to test the page with: missing {', '.join(missing)} (make system-deps)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="phasegate-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def half_up(value: float, places: int) -> str:
    """JavaScript's toFixed / Math.round on the exact binary value (halves round up)."""
    exp = Decimal(1).scaleb(-places)
    return str(Decimal(value).quantize(exp, rounding=ROUND_HALF_UP))


def expected_cells(window: dict[str, Any]) -> dict[str, str]:
    """What the page shows for one system of /status, formatted as app.js does."""
    errors = sorted(window["errors"].items(), key=lambda kv: (-kv[1], kv[0]))
    value = {name: (window[name] or {}).get("value") for name in METRICS}
    return {
        "count": f"{window['count']:,}",
        "success_rate": half_up(value["success_rate"] * 100, 1) + "%",
        "mean_confidence": half_up(value["mean_confidence"], 3),
        "p90_latency_ms": half_up(value["p90_latency_ms"], 0) + " ms",
        "p95_latency_ms": half_up(value["p95_latency_ms"], 0) + " ms",
        "p99_latency_ms": half_up(value["p99_latency_ms"], 0) + " ms",
        "mean_latency_ms": half_up(value["mean_latency_ms"], 0) + " ms",
        "errors": ", ".join(f"{k} {n}" for k, n in errors) or "none",
        "critical_errors": f"{value['critical_errors']:.0f}",
    }


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except Exception:  # the page may be re-rendering between two reads
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read()


@pytest.fixture
def stack(kafka_settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, WorkerProcess]]:
    """A worker with 2 s windows (several chart points) that has seen the traffic."""
    settings = kafka_settings.model_copy(
        update={"window_seconds": 2, "lateness_seconds": 2, "flush_seconds": 0.5}
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_assigned()
        # Phase 1 at 50%, as `phasegate rollout start` writes it; the Router follows.
        writer = RolloutWriter(worker.settings)
        writer.append(RolloutEvent(rollout=ROLLOUT, type="phase_started", phase=1, weight=50))
        writer.close()
        sent = live.run(worker.settings, "healthy", events=EVENTS, rate=500)
        assert sent.weight == 50
        results = sum(sent.per_system.values())
        worker.wait(lambda s: s["counters"]["results"] >= results)
        # stage 1 counts what it read before its partials reach stage 2's views
        worker.wait(lambda s: bool(s["control"].get(ROLLOUT, {}).get("gates")))
        worker.wait(
            lambda s: (
                sum(
                    w["count"] for w in s["rollouts"][ROLLOUT]["rolling"]["300"]["systems"].values()
                )
                == results
            )
        )
        yield worker.settings.model_copy(update={"dashboard_token": TOKEN}), worker
    finally:
        worker.stop()


def test_dashboard_in_chromium(browser: Any, stack: tuple[Settings, WorkerProcess]) -> None:
    from selenium.webdriver.common.by import By

    settings, worker = stack
    board = Dashboard(settings).start()
    server = make_server(board, "127.0.0.1", 0)
    serve_in_thread(server)
    router = Router(settings, ROLLOUT)
    try:
        status = worker.status()
        assert status is not None
        view = status["rollouts"][ROLLOUT]

        # /metrics of the real worker carries the same figures as /status.
        metrics = fetch(f"http://127.0.0.1:{settings.worker_port}/metrics").decode()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(metrics)
            for s in f.samples
        }
        for system, w in view["rolling"]["300"]["systems"].items():
            key = (("rollout", ROLLOUT), ("system", system), ("window", "300"))
            assert samples[("phasegate_window_events", key)] == w["count"]
            assert samples[("phasegate_success_rate", key)] == w["success_rate"]["value"]

        # The page, with the token in its address (kept in the tab's session storage).
        browser.get(f"{server.url}?token={TOKEN}")
        cell = 'td[data-system="{}"][data-metric="{}"]'

        def shown(system: str, metric: str) -> str:
            return browser.find_element(By.CSS_SELECTOR, cell.format(system, metric)).text

        wait_for(lambda: shown("production", "count"), what="the systems table")
        assert "token" not in browser.current_url, "the token is removed from the address"
        for system, window in view["rolling"]["300"]["systems"].items():
            for metric, text in expected_cells(window).items():
                assert shown(system, metric) == text, (system, metric)
        expected_winner = summary.winner(view, 300)["message"]
        assert browser.find_element(By.ID, "winner").text == expected_winner
        assert browser.find_element(By.ID, "weight").text == "50%"
        assert browser.find_element(By.ID, "phase").text == "1"
        assert browser.find_element(By.ID, "phase-label").text == "phase: A/B test"

        # The worker's gate verdicts, as /status has them.
        gates = status["control"][ROLLOUT]["gates"]
        title = f"phase 1 (A/B test): {gates['outcome']}"
        assert browser.find_element(By.ID, "gates-title").text == title
        rows = browser.find_elements(By.CSS_SELECTOR, "#gates tbody tr")
        assert [r.find_element(By.CSS_SELECTOR, "td").text for r in rows] == [
            v["criterion"] for v in gates["verdicts"]
        ]
        assert gates["outcome"] != "pass", "too few candidate results for phase 1 to pass"
        units = {m.name: m.unit for m in METRICS.values()}
        for row, v in zip(rows, gates["verdicts"], strict=True):  # in the metric's unit
            observed = row.find_elements(By.CSS_SELECTOR, "td")[2].text
            assert observed.endswith("%") == (units[v["metric"]] == "share"), observed
        rules = browser.find_elements(By.CSS_SELECTOR, "#rules tbody tr")
        assert len(rules) == len(summary.rules(view, 300))

        # Sort the rules by success rate (descending, then ascending).
        def rule_rates() -> list[float]:
            cells = browser.find_elements(By.CSS_SELECTOR, "#rules tbody tr td:nth-child(4)")
            return [float(c.text.rstrip("%")) for c in cells]

        browser.find_element(By.ID, "sort-success").click()
        assert rule_rates() == sorted(rule_rates(), reverse=True)
        browser.find_element(By.ID, "sort-success").click()
        assert rule_rates() == sorted(rule_rates())

        # Promote is the go decision: refused while the gates do not pass.
        message = browser.find_element(By.ID, "control-message")
        browser.find_element(By.ID, "promote").click()
        why = f"the gates of phase 1 are {gates['outcome']}"
        wait_for(lambda: "refused" in message.text and why in message.text, what=why)

        # The plan's weights are the quick-select buttons; two phases up is not offered.
        quick = browser.find_elements(By.CSS_SELECTOR, "#quick-weights button")
        assert [b.text for b in quick] == ["0%", "50%", "75%", "100%"]
        assert not browser.find_element(By.ID, "quick-100").is_enabled()
        assert browser.find_element(By.ID, "slider").get_attribute("max") == "75"

        # 75%: the rollout topic gets the event and the Router follows.
        browser.find_element(By.ID, "actor").clear()
        browser.find_element(By.ID, "actor").send_keys("browser-test")
        browser.find_element(By.ID, "quick-75").click()
        wait_for(lambda: "written to the rollout log" in message.text, what="the write")

        def written() -> bool:
            values = read_values(settings.bootstrap_servers, settings.topics.rollout, 2, 1)
            events = [decode(v, RolloutEvent) for v in values]
            return ("weight_set", 75, "browser-test") in [
                (e.type, e.weight, e.actor) for e in events
            ]

        wait_for(written, timeout=10, what="the event in the rollout topic")
        wait_for(lambda: router.weight == 75, timeout=5, what="the Router at 75")
        wait_for(lambda: browser.find_element(By.ID, "weight").text == "75%", what="75% shown")
        assert browser.find_element(By.ID, "phase").text == "1", "a weight change keeps the phase"

        # A rollback asks first; dismissing it writes nothing.
        browser.find_element(By.ID, "rollback").click()
        wait_for(lambda: browser.switch_to.alert, timeout=5, what="the confirmation")
        browser.switch_to.alert.dismiss()
        wait_for(lambda: message.text == "rollback cancelled", what="the cancellation")
        assert board.rollout_log.state(ROLLOUT).weight == 75

        browser.execute_script("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 10_000
        logged = browser.get_log("browser")  # the refused step is one 422, nothing else
        assert [
            e for e in logged if e["level"] == "SEVERE" and "status of 422" not in e["message"]
        ] == []
        assert json.loads(fetch(f"http://127.0.0.1:{settings.worker_port}/status"))["rollouts"]
    finally:
        router.close()
        server.shutdown()
        server.server_close()
        board.close()


def test_a_10_25_50_100_plan_on_the_page(browser: Any, kafka_settings: Settings) -> None:
    """Start, every phase (promote, quick-select, slider), a partial and a full rollback."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    board = Dashboard(
        kafka_settings,
        fetch=lambda s, rollout=None: sample_status(ROLLOUT),
        plan=load_plan(TEN_TO_HUNDRED),
    ).start()
    server = make_server(board, "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        browser.get(server.url)
        page = browser.find_element
        message = page(By.ID, "control-message")
        wait_for(lambda: page(By.ID, "weight").text == "0%", what="the page")
        Select(page(By.ID, "refresh")).select_by_value("2")

        def shown() -> tuple[int, int, int]:
            state = board.rollout_log.state(ROLLOUT)
            return state.phase, state.weight, len(state.history)

        def step(act: Callable[[], None], phase: int, weight: int, confirm: bool = False) -> None:
            """Do ``act`` on the page; the fold and then the page reach (phase, weight)."""
            events = shown()[2]
            browser.execute_script("arguments[0].textContent = ''", message)
            act()
            if confirm:
                wait_for(lambda: browser.switch_to.alert, timeout=5, what="the confirmation")
                browser.switch_to.alert.accept()
            wait_for(lambda: message.text, what="the reply")
            assert message.text.startswith("written to the rollout log"), message.text
            wait_for(lambda: shown() == (phase, weight, events + 1), what=f"{phase}/{weight}%")
            wait_for(
                lambda: (
                    (page(By.ID, "phase").text, page(By.ID, "weight").text)
                    == (str(phase), f"{weight}%")
                ),
                what=f"phase {phase} at {weight}% on the page",
            )

        def click(element_id: str, reason: str = "", force: bool = False) -> Callable[[], None]:
            def act() -> None:
                page(By.ID, "reason").clear()
                page(By.ID, "reason").send_keys(reason)
                if force:
                    page(By.ID, "force").click()
                page(By.ID, element_id).click()

            return act

        def refused(element_id: str, expected: str) -> None:
            page(By.ID, element_id).click()  # wait for this refusal, not an earlier one
            wait_for(lambda: "refused" in message.text and expected in message.text, what=expected)

        def slider(weight: int) -> None:
            browser.execute_script(
                "arguments[0].value = arguments[1];arguments[0].dispatchEvent(new Event('input'));",
                page(By.ID, "slider"),
                weight,
            )
            page(By.ID, "apply-weight").click()

        quick = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#quick-weights button")]
        assert quick == ["0%", "10%", "25%", "50%", "100%"]
        assert page(By.ID, "next-step").text == "phase 1 at 10%"
        step(click("start"), 1, 10)
        refused("promote", "the gates of phase 1 are fail")
        step(click("promote", "canary looks fine", force=True), 2, 25)
        enabled = [b.is_enabled() for b in browser.find_elements(By.CSS_SELECTOR, ".quick-weight")]
        assert enabled == [True, True, True, True, False]
        assert page(By.ID, "slider").get_attribute("max") == "50"
        step(click("quick-50"), 2, 50)
        step(lambda: slider(40), 2, 40)
        step(click("promote", "quarter looks fine", force=True), 3, 50)
        step(click("quick-100"), 3, 100)
        step(click("promote", "half looks fine", force=True), 4, 100)
        refused("promote", "already in the plan's last phase (4)")

        # A partial rollback to phase 2 (25%), then all the way back to 0%.
        targets = [o.text for o in Select(page(By.ID, "rollback-to")).options]
        assert targets == [
            "0% (stop the candidate)",
            "phase 1 (canary, 10%)",
            "phase 2 (quarter, 25%)",
            "phase 3 (half, 50%)",
        ]

        def rollback_to(value: str, reason: str) -> Callable[[], None]:
            def act() -> None:
                Select(page(By.ID, "rollback-to")).select_by_value(value)
                click("rollback", reason)()

            return act

        step(rollback_to("2", "p95 over 250 ms"), 2, 25, confirm=True)
        assert [o.text for o in Select(page(By.ID, "rollback-to")).options][1:] == [
            "phase 1 (canary, 10%)"
        ]
        step(rollback_to("", "errors"), 0, 0, confirm=True)
        history = board.rollout_log.state(ROLLOUT).history
        assert [(e.type, e.phase, e.weight) for e in history] == [
            ("phase_started", 1, 10),
            ("phase_started", 2, 25),
            ("weight_set", None, 50),
            ("weight_set", None, 40),
            ("phase_started", 3, 50),
            ("weight_set", None, 100),
            ("phase_started", 4, 100),
            ("rollback", 2, 25),
            ("rollback", 0, 0),
        ]
        assert [e.reason for e in history][-2:] == ["p95 over 250 ms", "errors"]
    finally:
        server.shutdown()
        server.server_close()
        board.close()


def test_the_page_marks_dry_runs_and_shows_an_alerts_evidence(
    browser: Any, kafka_settings: Settings
) -> None:
    """A dry-run criterion and min_duration's time left in the gates; a dry-run alert with
    its attribution, its window and both systems' figures, and why."""
    from selenium.webdriver.common.by import By

    plan = trial_plan()
    status = sample_status(ROLLOUT, plan=plan)
    board = Dashboard(kafka_settings, fetch=lambda s, rollout=None: status, plan=plan).start()
    server = make_server(board, "127.0.0.1", 0)
    serve_in_thread(server)
    alert = feeds_alert(ROLLOUT, kind="guardrail").model_copy(
        update={
            "dry_run": True,
            "attribution": "candidate-specific",
            "figures": [
                Figure(system="production", value=0.84, low=0.8, high=0.88, samples=300),
                Figure(system="pipeline", value=0.97, low=0.95, high=0.98, samples=290),
            ],
            "contributors": [
                Contributor(dimension="segment", value="de", candidate=38, baseline=1, expected=1.5)
            ],
        }
    )
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    producer.send(kafka_settings.topics.alerts, value=encode(alert))
    producer.flush()
    producer.close()
    try:
        browser.get(server.url)
        notes = [v["note"] for v in status["control"][ROLLOUT]["gates"]["verdicts"]]
        assert notes == ["13d 23h left of min_duration", "dry-run"], notes
        rows = wait_for(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#gates tbody tr"), what="the gates"
        )
        shown = [r.find_elements(By.CSS_SELECTOR, "td")[1].text for r in rows]
        assert shown == ["inconclusive (13d 23h left of min_duration)", "fail (dry-run)"]

        def first_alert() -> str:
            text = browser.find_element(By.CSS_SELECTOR, "#alerts li").text
            return text if "why:" in text else ""

        item = wait_for(first_alert, what="the alert and why")
        assert "dry-run guardrail [candidate-specific]" in item
        assert evidence(alert) in item and f"why: {why(alert)}" in item
    finally:
        server.shutdown()
        server.server_close()
        board.close()
