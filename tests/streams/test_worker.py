"""The Faust worker against the real broker: counts, alerts, DLQ, restarts, two workers."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer

from phasegate.testing.processes import WorkerProcess
from phasegate.testing.topics import read_values
from producers.emitter import Emitter
from producers.simulator import Scenario, SystemProfile, generate, virtual_clock
from schemas.codec import decode
from schemas.events import Alert, Feedback, Result
from schemas.internal import DeadLetter
from schemas.metrics import metric
from streams.aggregate import WindowStats

pytestmark = pytest.mark.timeout(240)

WINDOW = 3600  # every event of a test falls into one window


@pytest.fixture
def worker_settings(kafka_settings):
    return kafka_settings.model_copy(update={"window_seconds": WINDOW, "flush_seconds": 0.5})


@pytest.fixture
def workers(worker_settings, tmp_path):
    started: list[WorkerProcess] = []

    def start(name: str = "w1") -> WorkerProcess:
        w = WorkerProcess(worker_settings, tmp_path / f"{name}.log").start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


DEGRADED = Scenario("degraded", SystemProfile(success=0.97), SystemProfile(success=0.80))


def simulate(n: int, seed: int) -> list[Result | Feedback]:
    """Baseline healthy, candidate at 80% success, all in the current hour's window."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return list(
        generate(DEGRADED, n, weight=50, seed=seed, rollout="kai", clock=virtual_clock(hour, 1000))
    )


def emit(settings, results: list[Result | Feedback]) -> None:
    with Emitter(settings) as emitter:
        for r in results:
            assert emitter.emit(r)
        assert emitter.flush(30)


def exact(results: list[Result], system: str) -> WindowStats:
    stats = WindowStats()
    for r in results:
        if r.system != system:
            continue
        if isinstance(r, Result):
            stats.update(r)
        else:
            stats.update_feedback(r)
    return stats


def window(status: dict, system: str) -> dict | None:
    windows = status["rollouts"].get("kai", {}).get("systems", {}).get(system)
    return windows[0] if windows else None


def counted(events: list[Result | Feedback]):
    """Whether a status holds every result and every verdict of ``events``.

    Results and feedback come from different topics: a status holding every result may
    not yet hold every verdict, so both are waited for.
    """
    results = sum(isinstance(e, Result) for e in events)
    verdicts = len(events) - results

    def check(status: dict) -> bool:
        systems = [window(status, s) or {} for s in ("pipeline", "production")]
        seen = sum(w.get("count", 0) for w in systems)
        judged = sum(sum(w.get("feedback", {}).values()) for w in systems)
        return seen >= results and judged >= verdicts

    return check


def assert_matches(status: dict, results: list[Result]) -> None:
    for system in ("pipeline", "production"):
        want, got = exact(results, system), window(status, system)
        assert got["count"] == want.count
        for name in ("success_rate", "mean_confidence", "mean_latency_ms"):
            assert got[name]["value"] == pytest.approx(metric(name).estimate(want).value)
        assert got["errors"] == dict(want.errors)
        assert got["feedback"] == dict(want.feedback) and want.feedback
        assert got["top_rules"][0]["uses"] == want.top_rules()[0][1]
        latencies = sorted(
            r.latency_ms for r in results if isinstance(r, Result) and r.system == system
        )
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        assert got["p95_latency_ms"]["value"] == pytest.approx(p95, rel=0.01)


def test_windows_match_exact_values_alert_fires_once_and_bad_input_goes_to_dlq(
    worker_settings, workers
):
    worker = workers()
    worker.wait_assigned()
    results = simulate(2000, seed=1)
    emit(worker_settings, results)
    raw = KafkaProducer(bootstrap_servers=worker_settings.bootstrap_servers)
    raw.send(worker_settings.topics.results, key=b"u1", value=b'{"schema": "phasegate.result/1"}')
    raw.send(worker_settings.topics.results, key=b"u2", value=b"\xff not json")
    raw.flush()
    raw.close()

    status = worker.wait(lambda s: counted(results)(s) and s["counters"]["dead_letters"] >= 2)
    assert_matches(status, results)

    topics = worker_settings.topics
    alerts = [
        decode(v, Alert)
        for v in read_values(worker_settings.bootstrap_servers, topics.alerts, 2, 3.0)
    ]
    assert [(a.system, a.metric) for a in alerts] == [("production", "success_rate")]
    assert alerts[0].observed < 0.9 and alerts[0].samples >= 50

    letters = [
        decode(v, DeadLetter) for v in read_values(worker_settings.bootstrap_servers, topics.dlq, 2)
    ]
    reasons = sorted(letter.reason for letter in letters)
    assert any("rollout: Field required" in r for r in reasons)
    assert any(r.startswith("json:") for r in reasons)
    assert {letter.original for letter in letters} >= {b"\xff not json"}


def test_restart_after_kill_neither_loses_nor_doubles(worker_settings, workers):
    first = workers("first")
    first.wait_assigned()
    results = simulate(3000, seed=2)
    emit(worker_settings, results[:1500])
    first.wait(counted(results[:1500]))
    first.stop(signal.SIGKILL)  # no clean leave: offsets only as far as the last flush

    emit(worker_settings, results[1500:])
    second = workers("second")
    status = second.wait(counted(results), timeout=120)
    assert_matches(status, results)


def test_two_workers_split_partitions_and_the_merge_stays_right(worker_settings, workers):
    a, b = workers("a"), workers("b")
    a.wait_assigned()
    b.wait_assigned()

    def split(_: dict) -> bool:
        sa, sb = a.status() or {}, b.status() or {}
        results_a = {p for p in sa.get("assignment", []) if ".results:" in p}
        results_b = {p for p in sb.get("assignment", []) if ".results:" in p}
        return bool(results_a) and bool(results_b) and not results_a & results_b

    a.wait(split, timeout=90)
    results = simulate(3000, seed=3)
    emit(worker_settings, results)

    def merged(_: dict) -> bool:
        return any(counted(results)(w.status() or {"rollouts": {}}) for w in (a, b))

    a.wait(merged, timeout=90)
    owner = next(w for w in (a, b) if counted(results)(w.status()))
    assert_matches(owner.status(), results)
