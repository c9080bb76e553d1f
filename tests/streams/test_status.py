import asyncio
import itertools
import json
import random
from datetime import timedelta

from rollout.state import RolloutState
from schemas.events import RolloutEvent
from schemas.internal import Partial
from schemas.plan import load_plan
from streams.aggregate import WindowStats
from streams.metrics import prometheus_text
from streams.scrape import metrics_text, status_text
from streams.stage2 import Stage2
from streams.status import deltas, status_json, view_json, window_json
from streams.windows import PartitionAccumulator, RolloutView, merge_views
from tests.streams.conftest import T0, make_result


def _stats(system: str, n: int, ok: int, latency: float) -> WindowStats:
    stats = WindowStats()
    for i in range(n):
        stats.update(make_result(i, system=system, success=i < ok, latency_ms=latency))
    return stats


def test_deltas_are_candidate_minus_baseline():
    candidate = window_json(_stats("production", 100, 90, 120.0))
    baseline = window_json(_stats("pipeline", 100, 97, 100.0))
    d = deltas(candidate, baseline)
    assert round(d["success_rate"], 6) == -0.07
    assert round(d["mean_latency_ms"], 6) == 20.0
    p95 = candidate["p95_latency_ms"]["value"] - baseline["p95_latency_ms"]["value"]
    assert d["p95_latency_ms"] == p95 and 19 < p95 < 21
    empty = window_json(WindowStats())
    assert deltas(empty, baseline)["success_rate"] is None
    assert deltas(None, baseline)["success_rate"] is None


def test_view_json_has_windows_rolling_spans_and_deltas():
    acc = PartitionAccumulator("results", 0, window_seconds=60, lateness=600)
    now = T0.timestamp() + 3600
    for i in range(600):
        system = "production" if i % 2 else "pipeline"
        acc.add(i, make_result(i, system=system, seconds=i, success=i % 10 != 1), now)
    view = RolloutView("kai", 60)
    for p in acc.drain():
        view.apply(p)
    data = view_json(view, [120, 600], baseline="pipeline", candidate="production")
    assert len(data["systems"]["production"]) == 10
    assert data["rolling"]["600"]["systems"]["production"]["count"] == 300
    assert data["rolling"]["120"]["systems"]["pipeline"]["count"] == 60
    assert round(data["rolling"]["600"]["delta"]["success_rate"], 9) == -0.2  # 80% vs 100%
    assert data["end"] == "2026-01-01T00:10:00+00:00"


def _stage2(rollouts: list[str]) -> Stage2:
    """Stage 2 after one minute of traffic of each rollout, each at phase 1."""
    acc = PartitionAccumulator("results", 0, window_seconds=60, lateness=600)
    now = T0.timestamp() + 60
    for r, rollout in enumerate(rollouts):
        for i in range(40):
            system = "production" if i % 2 else "pipeline"
            offset = r * 40 + i
            acc.add(offset, make_result(offset, rollout=rollout, system=system, seconds=i), now)
    states = {
        r: RolloutState(r).apply(
            RolloutEvent(rollout=r, type="phase_started", phase=1, weight=50, ts=T0)
        )
        for r in rollouts
    }
    stage2 = Stage2(60, 3600, load_plan(), state_of=states.get)
    for partial in acc.drain():
        stage2.apply(partial)
    return stage2


ROLES = ([300], "pipeline", "production")


def test_status_of_one_rollout_holds_only_its_views_and_control():
    stage2 = _stage2(["kai", "mia", "zoe"])
    worker = {"counters": {"results": 120}}
    whole, code = status_json(stage2, None, ROLES, worker)
    assert code == 200 and sorted(whole["rollouts"]) == sorted(whole["control"]) == [
        "kai",
        "mia",
        "zoe",
    ]
    one, code = status_json(stage2, "mia", ROLES, worker)
    assert code == 200 and list(one["rollouts"]) == list(one["control"]) == ["mia"]
    assert one["rollouts"]["mia"] == whole["rollouts"]["mia"]
    assert one["control"]["mia"]["phase"] == 1 and one["counters"] == worker["counters"]


def test_status_of_an_unknown_rollout_is_a_404_that_says_so():
    body, code = status_json(_stage2(["kai"]), "nobody", ROLES, {"counters": {}})
    assert code == 404
    assert body["rollouts"] == body["control"] == {}
    assert body["error"] == "the worker has seen no events of rollout 'nobody'"


def _runs(seed: int) -> list[list[Partial]]:
    """Two source partitions over 13 windows, each flushed every 20 events and committed
    after its flush, delivered as stage 2 would see them: partition 1 six runs behind
    (its partials change windows already closed), and partition 0 replaying two runs."""
    rng = random.Random(seed)
    accs = [PartitionAccumulator("results", p, window_seconds=60, lateness=900) for p in (0, 1)]
    runs: list[list[list[Partial]]] = [[], []]
    now = T0.timestamp() + 3600
    for i in range(1600):
        p, offset = i % 2, i // 2
        result = make_result(
            i,
            system=rng.choice(["production", "pipeline"]),
            success=rng.random() < 0.9,
            latency_ms=rng.lognormvariate(4.6, 0.4),
            rules=tuple(rng.sample(["a", "b", "c"], rng.randrange(3))),
            seconds=i / 2,
        )
        accs[p].add(offset, result, now)
        if offset % 20 == 19:
            runs[p].append(accs[p].drain())
            accs[p].committed(offset + 1)
    ours, lagging = runs
    delivered = [*ours[:10], ours[8], ours[9], *ours[10:]]  # a restart replays runs 8 and 9
    late = [[], [], [], [], [], [], *lagging]
    return [a + b for a, b in itertools.zip_longest(delivered, late, fillvalue=[])]


def test_cached_views_and_gates_match_fresh_ones():
    """A worker scraped after every run (its windows' totals, rolling merges and gate
    reports kept between scrapes) shows what a worker fresh from the same partials
    shows, and gates judged afresh at each scrape agree with the kept reports."""
    runs = _runs(1)
    started = RolloutState("kai").apply(
        RolloutEvent(rollout="kai", type="phase_started", phase=1, weight=50, ts=T0)
    )
    advanced = started.apply(
        RolloutEvent(
            rollout="kai", type="phase_started", phase=2, weight=50, ts=T0 + timedelta(minutes=6)
        )
    )
    state = {"kai": started}
    kept = Stage2(60, 3600, load_plan(), state_of=state.get)
    afresh = Stage2(60, 3600, load_plan(), state_of=state.get)
    for n, run in enumerate(runs):
        if n == len(runs) // 2:
            state["kai"] = advanced
        for partial in run:
            kept.apply(partial)
            afresh.apply(partial)
        shown = view_json(kept.views["kai"], [120, 300, 600], "pipeline", "production")
        fresh = merge_views([p for r in runs[: n + 1] for p in r], 60)["kai"]
        assert shown == view_json(fresh, [120, 300, 600], "pipeline", "production")
        report = kept.gates("kai")
        afresh.reports.clear()
        assert report is not None and report.to_json() == afresh.gates("kai").to_json()  # type: ignore[union-attr]
        assert kept.gates("kai") is report  # nothing changed: the kept report
    assert report.phase == 2


def test_the_whole_status_and_metrics_built_rollout_by_rollout_are_the_one_go_ones():
    """``streams.scrape`` gives what ``status_json`` and ``prometheus_text`` give, and the
    event loop runs between its rollouts."""
    stage2 = _stage2(["kai", "mia", "zoe"])
    worker = {"counters": {"results": 120}, "assignment": ["results:0"]}
    whole, _ = status_json(stage2, None, ROLES, worker)
    turns = 0

    async def scrape() -> tuple[str, str]:
        async def other_task() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other_task())
        await asyncio.sleep(0)
        status = await status_text(stage2, ROLES, worker)
        after_status = turns
        metrics = await metrics_text(stage2, ROLES, worker)
        task.cancel()
        assert after_status >= 3 and turns - after_status >= 3  # a turn after each rollout
        return status, metrics

    status, metrics = asyncio.run(scrape())
    assert status == json.dumps(whole)
    assert metrics == prometheus_text(whole)
    assert metrics == prometheus_text(
        status_json(_stage2(["kai", "mia", "zoe"]), None, ROLES, worker)[0]
    )
    empty = Stage2(60, 3600, load_plan())
    assert json.loads(asyncio.run(status_text(empty, ROLES, {}))) == {"rollouts": {}, "control": {}}
