"""The sample ratio mismatch check on simulated rollouts: false alarms and power.

Each rollout: 2,000 units with heavy-tailed query rates (log-normal, about 3 per window,
a few units far more), routed by the Router's hash, through Stage 2 (one partial per
window and system). The check (distinct units per window, fallback copies out, one check
per window, statistic divided by the windows in the span) against the check before it
(a chi-square on the span's events), measured on the same runs.

    python -m bench.bench_srm [--rollouts 300]
"""

from __future__ import annotations

import argparse

from bench.common import print_table
from phasegate.testing.sample_ratio import run


def healthy(rollouts: int, p: float) -> list[str]:
    alerts = checks = events = 0
    for i in range(rollouts):
        a, c, e = run(f"healthy-{i}", (25, 50, 75)[i % 3], lost=0.0, seed=i, p=p)
        alerts, checks, events = alerts + a, checks + c, events + e
    return [
        f"healthy, weights 25/50/75, p_value {p}",
        f"{checks:,}",
        f"{alerts} ({alerts / checks:.2%} of checks)",
        f"{events:,} ({events / checks:.1%} of checks)",
    ]


def broken(rollouts: int, lost: float) -> list[str]:
    observed = 0.5 * (1 - lost) / (0.5 * (1 - lost) + 0.5)
    runs = [run(f"broken-{i}", 50, lost=lost, seed=i, p=0.001) for i in range(rollouts)]
    caught = sum(a > 0 for a, _, _ in runs)
    events = sum(e > 0 for _, _, e in runs)
    return [
        f"router at 50%, {observed:.0%} observed, p_value 0.001",
        f"{sum(c for _, c, _ in runs):,}",
        f"caught in {caught} of {rollouts} rollouts",
        f"caught in {events} of {rollouts} rollouts",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=300)
    n = parser.parse_args().rollouts
    rows = [healthy(n, 0.01), healthy(n, 0.001)]
    rows += [broken(n // 3, lost) for lost in (1 / 3, 0.2, 0.1)]
    print_table(
        f"Sample ratio mismatch: {n} simulated rollouts of 14 windows",
        ["rollouts", "checks", "warnings: units (now)", "chi-square on events (before)"],
        rows,
        width=160,
    )


if __name__ == "__main__":
    main()
