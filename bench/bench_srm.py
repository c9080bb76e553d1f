"""The sample ratio mismatch check on simulated rollouts: false warnings and power.

Each rollout: 10,000 units with heavy-tailed query rates (log-normal, sigma 1.2) scaled to
the row's events per second, 60 s windows, routed by the Router's hash at the row's
router weight while the log says the rollout's weight, through a real Stage 2 with the
default plan, for 30 minutes (``phasegate.testing.sample_ratio``). The check (units since
the last change, mixture SPRT) beside the rule before it (a chi-square on each window's
distinct units over the last 5 minutes, divided by the windows), on the same windows.

    python -m bench.bench_srm [--rollouts 500] [--processes 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from multiprocessing import Pool

from bench.common import print_table
from phasegate.testing.sample_ratio import WINDOW, Outcome, run

MINUTES = 30
ROWS = [  # (label, weight, router weight, events/s, p_value)
    ("healthy, weights 25/50/75", 0, 0, 10, 0.001),
    ("healthy, weights 25/50/75", 0, 0, 100, 0.001),
    ("healthy, weights 25/50/75", 0, 0, 10, 0.05),
    ("healthy, weights 25/50/75", 0, 0, 100, 0.05),
    ("router at 45%, weight 50", 50, 45, 10, 0.001),
    ("router at 45%, weight 50", 50, 45, 100, 0.001),
    ("router at 48%, weight 50", 50, 48, 10, 0.001),
    ("router at 48%, weight 50", 50, 48, 100, 0.001),
]


def one(args: tuple[int, int, int, float, float]) -> Outcome:
    i, weight, router, events_per_s, p_value = args
    weight = weight or (25, 50, 75)[i % 3]
    router = router or weight
    return run(f"r{i}", weight, router, events_per_s, MINUTES, seed=i, p_value=p_value)


def minutes(warned: list[int | None]) -> str:
    """Median minutes to the warning: the end of the window whose partial raised it."""
    times = [(w + 1) * WINDOW / 60 for w in warned if w is not None]
    return f"{statistics.median(times):.0f} min" if times else "-"


def row(pool: Pool, rollouts: int, spec: tuple) -> list[str]:
    label, weight, router, events_per_s, p_value = spec
    outcomes = pool.map(one, [(i, weight, router, events_per_s, p_value) for i in range(rollouts)])
    now = [o.warned for o in outcomes]
    before = [o.before_warned for o in outcomes]
    return [
        f"{label}, {events_per_s:g} events/s, p_value {p_value:g}",
        f"{sum(w is not None for w in now)} ({minutes(now)})",
        str(sum(o.recovered for o in outcomes)),
        f"{sum(w is not None for w in before)} ({minutes(before)})",
        str(sum(o.before_recovered for o in outcomes)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=500)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    with Pool(args.processes) as pool:
        rows = [row(pool, args.rollouts, spec) for spec in ROWS]
    print_table(
        f"Sample ratio check: {args.rollouts} simulated rollouts of {MINUTES} minutes per row "
        f"({time.monotonic() - started:.0f} s)",
        [
            "rollouts",
            "warned: units since the change (median time)",
            '"recovered"',
            "warned: windowed chi-square (before)",
            '"recovered" (before)',
        ],
        rows,
        width=170,
    )


if __name__ == "__main__":
    main()
