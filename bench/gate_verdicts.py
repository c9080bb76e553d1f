"""Gate verdicts under continuous looking: false "pass" and pass/not-pass flips.

Each simulated rollout runs ``MINUTES`` of traffic at ``RATE`` events/s per system (phase 1
of the default plan, weight 50: both systems serve alike), in 10-s batches: success
Bernoulli(p), 10% of events get a feedback verdict, "correct" with probability
``0.9 p + 0.1 (1 - p)`` (the simulator's ``positive_if_success`` / ``_failure``). The
gates are looked at after every batch (a /status poll every 10 s), two rules on the same
traffic:

- ``fixed``: today's rule before this change, a fixed 95% interval re-judged at every
  look (``schemas.metrics`` estimates at z = 1.96, no memory);
- ``phasegate``: the worker's rule (``schemas.verdict.judge``): confidence sequences at
  the plan's alpha, intersected over the looks at every minute's end (``schemas.looks``).

Scenarios:

- ``worse``: the candidate 1 point worse than the baseline (96% vs 97%), the criterion
  "success_rate not worse than the baseline (margin 0.01)": the truth sits on the margin,
  so any "pass" is a false one. Goal: "pass" ever shown in <= 5% of rollouts.
- ``aa``: both systems at 97%, the default plan's phase 1 criteria; every move of the
  overall verdict from pass to not-pass is a flip on noise. Goal: median 0 per rollout.

    python -m bench.gate_verdicts [--runs 500] [--minutes 60]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.common import print_table
from schemas.confseq import Interval
from schemas.looks import judge_phase, looks, remember
from schemas.metrics import metric
from schemas.plan import Criterion, Phase, load_plan
from schemas.stats import wilson
from schemas.verdict import Outcome, combined, count_outcome, interval_outcome, overall
from sinks.history import Sums

RATE = 10  # events per second per system
BATCH_SECONDS = 10  # a look after every batch
WINDOW = 60  # the worker's window: a remembered look at every window's end
FEEDBACK = 0.1
BASELINE = 0.97

MARGIN_GATE = Criterion(metric="success_rate", compare="baseline", margin=0.01)


@dataclass(frozen=True)
class Scenario:
    name: str
    candidate: float  # success share
    phase: Phase


def scenarios() -> dict[str, Scenario]:
    first = load_plan().phases[0]
    return {
        "worse": Scenario(
            "worse", BASELINE - 0.01, first.model_copy(update={"advance": [MARGIN_GATE]})
        ),
        "aa": Scenario("aa", BASELINE, first),
    }


def fixed(criterion: Criterion, phase: Phase, cand: Sums, base: Sums) -> Outcome:
    """Today's rule before confidence sequences: a fixed 95% interval, no memory."""
    meaning = metric(criterion.metric)
    needed = phase.min_feedback if meaning.feedback else phase.min_samples
    n = meaning.samples(cand)
    if criterion.compare:
        test = meaning.compare(cand, base)
        smaller = min(n, meaning.samples(base))
        if test is None or smaller < needed:
            return "inconclusive"
        threshold = criterion.margin if meaning.lower_is_better else -criterion.margin
        return interval_outcome(Interval(test.low, test.high), threshold, meaning.lower_is_better)
    threshold = criterion.max if criterion.max is not None else criterion.min
    assert threshold is not None
    est = meaning.estimate(cand)
    if meaning.unit == "count":
        return count_outcome(est.value if est else 0, threshold, n, needed)
    if est is None or n < needed:
        return "inconclusive"
    return interval_outcome(Interval(est.low, est.high), threshold, criterion.max is not None)


def _batch(rng: np.random.Generator, p: float) -> Sums:
    n = RATE * BATCH_SECONDS
    ok = int(rng.binomial(n, p))
    answered = int(rng.binomial(n, FEEDBACK))
    correct = int(rng.binomial(answered, 0.9 * p + 0.1 * (1 - p)))
    return Sums(
        events=n, successes=ok, feedback={"correct": correct, "incorrect": answered - correct}
    )


@dataclass(frozen=True)
class Run:
    """What one rollout showed under each rule."""

    passed: dict[str, int | None]  # the second of the first "pass" shown (None: never)
    flips: dict[str, int]  # overall pass -> not pass


def run_once(scenario: Scenario, seed: int, minutes: int, alpha: float) -> Run:
    rng = np.random.default_rng(seed)
    phase = scenario.phase
    cand, base = Sums(), Sums()
    memory: dict[int, Interval] = {}
    last: dict[str, Outcome] = {}
    passed: dict[str, int | None] = {"fixed": None, "phasegate": None}
    flips = {"fixed": 0, "phasegate": 0}
    for second in range(BATCH_SECONDS, minutes * 60 + 1, BATCH_SECONDS):
        cand += _batch(rng, scenario.candidate)
        base += _batch(rng, BASELINE)
        shown = {
            "fixed": combined([fixed(c, phase, cand, base) for c in phase.advance]),
            "phasegate": overall(judge_phase(phase, cand, base, None, alpha=alpha, memory=memory)),
        }
        if second % WINDOW == 0:  # a window ends: the worker remembers this look
            memory = remember(memory, looks(phase, cand, base, None, alpha))
        for rule, outcome in shown.items():
            if outcome == "pass" and passed[rule] is None:
                passed[rule] = second
            flips[rule] += last.get(rule) == "pass" and outcome != "pass"
            last[rule] = outcome
    return Run(passed, flips)


def _share(k: int, n: int) -> str:
    est = wilson(k, n)
    return f"{k / n:.1%} ({est.low:.1%}-{est.high:.1%})" if est else "-"


def _job(args: tuple[str, int, int, float]) -> Run:
    name, seed, minutes, alpha = args
    return run_once(scenarios()[name], seed, minutes, alpha)


def rows(runs: int, minutes: int = 60, workers: int = 2) -> tuple[str, list[str], list[list[str]]]:
    """The gate rows of the goals table: (title, columns, rows)."""
    alpha = load_plan().gates.alpha
    began = time.perf_counter()
    out = []
    with ProcessPoolExecutor(workers) as pool:
        for name in ("worse", "aa"):
            done = list(
                pool.map(_job, [(name, k, minutes, alpha) for k in range(runs)], chunksize=8)
            )
            for rule in ("fixed", "phasegate"):
                firsts = [r.passed[rule] for r in done if r.passed[rule] is not None]
                flips = [r.flips[rule] for r in done]
                out.append(
                    [
                        name,
                        rule,
                        _share(len(firsts), runs),
                        f"{statistics.median(firsts) / 60:.0f}" if firsts else "-",
                        _share(sum(f > 0 for f in flips), runs),
                        f"{statistics.median(flips):g}",
                        str(max(flips)),
                    ]
                )
    title = (
        f"Gate verdicts on {runs} simulated rollouts per scenario ({minutes} min at {RATE} "
        f"events/s a system, a look every {BATCH_SECONDS} s; alpha {alpha:g}; "
        f"{time.perf_counter() - began:.0f} s)"
    )
    columns = [
        "scenario",
        "rule",
        '"pass" ever shown',
        "median min to pass",
        "runs with a flip",
        "median flips",
        "max flips",
    ]
    return title, columns, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="simulated rollouts per scenario")
    parser.add_argument("--minutes", type=int, default=60, help="length of each rollout")
    args = parser.parse_args()
    print_table(*rows(args.runs, args.minutes), width=140)


if __name__ == "__main__":
    main()
