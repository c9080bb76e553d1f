"""Pass, fail, inconclusive: the interval against the threshold, enough samples, the
memory of earlier looks, min_duration and dry runs."""

from __future__ import annotations

import pytest

from schemas.confseq import Interval
from schemas.looks import looks, remember
from schemas.plan import Criterion, Phase, parse_plan
from schemas.verdict import count_outcome, interval_outcome, judge, look, overall
from sinks.history import Sums


def Counts(events: int, successes: int) -> Sums:
    """Totals with successes only (enough for success_rate criteria)."""
    return Sums(events=events, successes=successes)


PHASE = Phase(name="p", weight=50, min_samples=1000)
AT_LEAST = Criterion(metric="success_rate", min=0.95)
VS_BASELINE = Criterion(metric="success_rate", compare="baseline", margin=0.01)


def test_bounds_need_the_whole_interval_on_one_side() -> None:
    assert interval_outcome(Interval(0.96, 0.98), 0.95, upper=False) == "pass"
    assert interval_outcome(Interval(0.94, 0.96), 0.95, upper=False) == "inconclusive"
    assert interval_outcome(Interval(0.89, 0.93), 0.95, upper=False) == "fail"
    assert interval_outcome(Interval(140, 160), 200, upper=True) == "pass"
    assert interval_outcome(Interval(240, 260), 200, upper=True) == "fail"


def test_counts_and_the_overall_decision() -> None:
    assert count_outcome(1, 0, 10, 1000) == "fail"
    assert count_outcome(0, 0, 10, 1000) == "inconclusive"
    assert count_outcome(0, 0, 1000, 1000) == "pass"
    passing = judge(AT_LEAST, PHASE, Counts(10_000, 9_900))
    unsure = judge(AT_LEAST, PHASE, Counts(100, 100))
    failing = judge(AT_LEAST, PHASE, Counts(10_000, 9_000))
    assert (passing.outcome, unsure.outcome, failing.outcome) == ("pass", "inconclusive", "fail")
    assert overall([passing, passing]) == "pass"
    assert overall([passing, unsure]) == "inconclusive"
    assert overall([unsure, failing]) == "fail"
    assert overall([]) == "inconclusive"


def test_the_interval_is_a_confidence_sequence_wider_than_a_fixed_one() -> None:
    """9,700 of 10,000 against 0.965: a fixed 95% interval passes, the sequence does not."""
    v = judge(Criterion(metric="success_rate", min=0.965), PHASE, Counts(10_000, 9_700))
    assert v.outcome == "inconclusive"
    assert v.low < 0.965 < v.high
    fixed = judge(
        Criterion(metric="success_rate", min=0.965), PHASE, Counts(10_000, 9_700), alpha=0.5
    )
    assert fixed.low > v.low  # a looser alpha gives a narrower interval
    assert judge(AT_LEAST, PHASE, Counts(10_000, 9_700)).outcome == "pass"


def test_a_held_pass_stays_until_the_evidence_contradicts_it() -> None:
    phase = Phase(name="p", weight=50, advance=[AT_LEAST])
    earlier = look(AT_LEAST, PHASE, Counts(1_500, 1_455))
    assert earlier.outcome == "pass"
    memory = remember({}, {0: earlier})
    noisy = Counts(20_500, 19_550)  # alone: inconclusive
    assert judge(AT_LEAST, PHASE, noisy).outcome == "inconclusive"
    assert judge(AT_LEAST, PHASE, noisy, held=memory[0]).outcome == "pass"
    assert remember(memory, looks(phase, noisy, None, None, 0.05))[0].low == memory[0].low
    contradicted = judge(AT_LEAST, PHASE, Counts(40_000, 36_000), held=memory[0])
    assert contradicted.outcome == "fail"
    assert "contradicted" in contradicted.note
    restarted = remember(memory, looks(phase, Counts(40_000, 36_000), None, None, 0.05))
    assert restarted[0].high < 0.95  # the memory starts again from the newest look


def test_too_few_samples_are_never_remembered() -> None:
    phase = Phase(name="p", weight=50, min_samples=1000, advance=[AT_LEAST, VS_BASELINE])
    early = looks(phase, Counts(500, 500), Counts(500, 480), None, 0.05)
    assert set(early) == {0, 1}
    assert remember({}, early) == {}
    counted = Phase(name="p", weight=50, advance=[Criterion(metric="critical_errors", max=0)])
    assert looks(counted, Counts(5000, 5000), None, None, 0.05) == {}


@pytest.mark.parametrize(("text", "seconds"), [("14d", 1_209_600), ("36h", 129_600), ("90m", 5400)])
def test_min_duration_holds_a_pass_back_and_says_how_long(text: str, seconds: int) -> None:
    phase = Phase(name="p", weight=50, min_duration=text)
    assert phase.min_duration == seconds
    early = judge(AT_LEAST, phase, Counts(10_000, 9_900), elapsed=seconds - 3600)
    assert early.outcome == "inconclusive"
    assert early.note == "1h left of min_duration"
    assert judge(AT_LEAST, phase, Counts(10_000, 9_900), elapsed=seconds).outcome == "pass"
    failing = judge(AT_LEAST, phase, Counts(10_000, 9_000), elapsed=0)
    assert failing.outcome == "fail"  # a no-go is never held back


def test_a_duration_that_is_not_one_is_refused_by_name() -> None:
    text = '[[phases]]\nname = "a"\nweight = 50\nmin_duration = "2 weeks"\n'
    with pytest.raises(ValueError, match=r"min_duration.*not a duration like 14d"):
        parse_plan(text)


def test_a_dry_run_criterion_is_judged_marked_and_left_out_of_the_outcome() -> None:
    dry = Criterion(metric="success_rate", min=0.99, dry_run=True)
    verdict = judge(dry, PHASE, Counts(10_000, 9_700))
    assert (verdict.outcome, verdict.dry_run, verdict.note) == ("fail", True, "dry-run")
    passing = judge(AT_LEAST, PHASE, Counts(10_000, 9_700))
    assert overall([passing, verdict]) == "pass"
    assert overall([verdict]) == "inconclusive"  # nothing real was judged
