"""The worker's protocol without Faust or a broker: batches, flush, commit, dead letters,
rebalance."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rollout.state import RolloutState, fold
from schemas.codec import encode
from schemas.events import Alert, Feedback, Result, RolloutEvent
from schemas.internal import DeadLetter, Partial
from schemas.plan import load_plan
from streams.protocol import Aggregation, Counters, Judgement
from streams.stage1 import Stage1
from streams.stage2 import Stage2
from tests.streams.conftest import T0, make_result

RESULTS, FEEDBACK = "results", "feedback"


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass
class Outbox:
    """An in-memory broker: what was sent, in order, with the journal of every step."""

    journal: list[str]
    fail_partials: int = 0  # refuse this many partial sends (a broker away)
    fail_commits: int = 0  # refuse this many commits (a rebalance under way)
    sent: list[Partial] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rollouts: list[RolloutEvent] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)

    async def partials(self, partials: Sequence[Partial]) -> None:
        if self.fail_partials:
            self.fail_partials -= 1
            self.journal.append("refused")
            raise TimeoutError("broker away")
        self.sent += partials
        self.journal.append(f"partials {len(partials)}")

    async def alert(self, alert: Alert) -> None:
        self.alerts.append(alert)

    async def rollout(self, event: RolloutEvent) -> None:
        self.rollouts.append(event)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    async def commit(self, offsets: Mapping[tuple[str, int], int]) -> list[tuple[str, int]]:
        if self.fail_commits:
            self.fail_commits -= 1
            self.journal.append("commit refused")
            return []
        given = " ".join(f"{t}:{p}={o}" for (t, p), o in sorted(offsets.items()))
        self.journal.append(f"commit {given}")
        return list(offsets)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)  # a wait lets other tasks run


def aggregation(outbox: Outbox) -> tuple[Aggregation, Counters]:
    counters = Counters()
    stage1 = Stage1(60, 60, max_future=300)
    models = {RESULTS: Result, FEEDBACK: Feedback}
    return Aggregation(stage1, models, outbox, counters, T0.timestamp, no_sleep), counters


def feed(
    agg: Aggregation, values: list[bytes | None], partition: int = 0, batch: int = 100
) -> None:
    """``values`` from offset 0 of ``partition``, ``batch`` messages a fetch."""
    messages = [Msg(RESULTS, partition, offset, value) for offset, value in enumerate(values)]

    async def go() -> None:
        for start in range(0, len(messages), batch):
            await agg.add_batch(messages[start : start + batch])

    asyncio.run(go())


def results(n: int) -> list[bytes]:
    return [encode(make_result(i)) for i in range(n)]


def test_nothing_is_committed_before_the_broker_has_the_partials():
    journal: list[str] = []
    outbox = Outbox(journal, fail_partials=2)
    agg, counters = aggregation(outbox)
    feed(agg, results(3))
    assert journal == []  # read, not committed
    asyncio.run(agg.flush())
    assert journal == ["refused", "refused", "partials 1", "commit results:0=3"]
    assert counters.results == 3 and counters.partials == 1
    assert outbox.sent[0].stats.count == 3
    assert not agg.stage1.accumulators[(RESULTS, 0)].pending
    asyncio.run(agg.flush())  # nothing new: nothing sent, nothing committed
    assert len(journal) == 4


def test_a_refused_commit_is_not_claimed_so_a_replay_still_replaces_the_run():
    outbox = Outbox([], fail_commits=1)
    agg, _ = aggregation(outbox)
    values = results(4)
    feed(agg, values[:2])
    asyncio.run(agg.flush())
    asyncio.run(agg.add_batch([Msg(RESULTS, 0, 2, values[2]), Msg(RESULTS, 0, 3, values[3])]))
    asyncio.run(agg.flush())
    assert outbox.journal == ["partials 1", "commit refused", "partials 1", "commit results:0=4"]
    assert [p.committed_offset for p in outbox.sent] == [0, 0]


def test_batches_of_any_size_give_the_same_partials():
    values = results(50)
    sent = []
    for batch in (1, 7, 50):
        outbox = Outbox([])
        agg, counters = aggregation(outbox)
        feed(agg, values, batch=batch)
        asyncio.run(agg.flush())
        assert counters.results == 50 and outbox.journal == ["partials 1", "commit results:0=50"]
        sent.append(outbox.sent)
    assert sent[0] == sent[1] == sent[2]


def test_an_unreadable_or_refused_event_goes_to_the_dlq_and_the_batch_is_aggregated():
    journal: list[str] = []
    outbox = Outbox(journal)
    agg, counters = aggregation(outbox)
    future = make_result(9).model_copy(update={"ts": T0.replace(year=2099)})
    feed(agg, [b"not json", results(1)[0], encode(future), None])
    reasons = [letter.reason for letter in outbox.letters]
    assert len(reasons) == 3 and "ts" in reasons[1]
    assert reasons[2] == "empty message (no value)"
    assert [letter.offset for letter in outbox.letters] == [0, 2, 3]
    assert outbox.letters[0].original == b"not json"
    assert counters.dead_letters == 3 and counters.results == 1
    asyncio.run(agg.flush())
    assert journal == ["partials 1", "commit results:0=4"]
    assert outbox.sent[0].stats.count == 1
    assert outbox.sent[0].first_offset == 0 and outbox.sent[0].last_offset == 3


def test_a_rebalance_hands_over_what_was_read_and_forgets_the_partition():
    journal: list[str] = []
    outbox = Outbox(journal)
    agg, _ = aggregation(outbox)
    feed(agg, results(2), partition=0)
    feed(agg, results(1), partition=1)
    asyncio.run(agg.revoke({(RESULTS, 1)}))
    assert journal == ["partials 2", "commit results:0=2 results:1=1"]
    assert set(agg.stage1.accumulators) == {(RESULTS, 0)}


def test_a_rebalance_waits_for_a_flush_under_way_before_giving_the_partition_away():
    journal: list[str] = []
    agg, _ = aggregation(Outbox(journal, fail_partials=1))
    feed(agg, results(2))

    async def go() -> None:
        flushing = asyncio.create_task(agg.flush())
        await asyncio.sleep(0)  # the flush has drained the run and waits to send it again
        await agg.revoke({(RESULTS, 0)})
        journal.append("revoked")
        await flushing

    asyncio.run(go())
    assert journal == ["refused", "partials 1", "commit results:0=2", "revoked"]


def test_stage_two_judges_only_once_the_log_is_read_and_sends_what_fires():
    started = RolloutEvent(rollout="kai", type="phase_started", weight=50, phase=1, ts=T0)
    state: RolloutState = fold([started], "kai")
    counters, outbox = Counters(), Outbox([])
    judgement = Judgement(
        Stage2(10, 3600, load_plan(), state_of=lambda r: state), outbox, counters, asyncio.Event()
    )
    stage1 = Stage1(10, 10, max_future=10**10)
    acc = stage1.accumulator(RESULTS, 0, 0)
    for i in range(400):
        r = make_result(i, success=i % 2 == 0, seconds=1 + i * 0.01)
        acc.add(i, r, now=T0.timestamp() + 5)
    partials = [Msg("partials", 0, k, encode(p)) for k, p in enumerate(acc.drain())]

    async def go() -> None:
        merging = asyncio.create_task(judgement.merge(partials[0]))
        await asyncio.sleep(0.05)
        assert not merging.done()  # waits for the rollout log
        judgement.log_read.set()
        await merging
        await judgement.merge(Msg("partials", 0, 9, b"{}"))

    asyncio.run(go())
    assert [a.kind for a in outbox.alerts] == ["emergency_rollback"]
    assert [(e.weight, e.phase) for e in outbox.rollouts] == [(0, 0)]
    assert (counters.alerts, counters.rollbacks, counters.dead_letters) == (1, 1, 1)
    assert outbox.letters[0].source_topic == "partials"


def test_feedback_batches_count_each_verdict_once_in_its_system_window():
    outbox = Outbox([])
    agg, counters = aggregation(outbox)
    verdicts = ["correct", "incorrect", "unsure", "correct"]
    sent = [
        Feedback(rollout="kai", system=("pipeline", "production")[i % 2], query_id=f"q{i}",
                 verdict=v, ts=T0)
        for i, v in enumerate(verdicts)
    ]  # fmt: skip
    values = [encode(f) for f in sent] + [encode(sent[0]), b"{}"]  # a retry, an unreadable one
    messages = [Msg(FEEDBACK, 0, offset, value) for offset, value in enumerate(values)]
    asyncio.run(agg.add_batch(messages))
    asyncio.run(agg.flush())
    got = {p.system: p.stats.feedback for p in outbox.sent}
    assert got == {
        "pipeline": {"correct": 1, "unsure": 1},
        "production": {"incorrect": 1, "correct": 1},
    }
    assert (counters.feedback, counters.dead_letters) == (5, 1)
    assert outbox.journal == ["partials 2", "commit feedback:0=6"]
