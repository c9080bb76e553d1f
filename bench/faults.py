"""The fault table: every scenario of phasegate.testing.faults at full size, on one private stack.

python -m bench.faults                  # full size (500 gen/s, 60 s each, 10,000 bad)
python -m bench.faults --reduced        # the test suite's size
python -m bench.faults broker_restart   # some scenarios only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import print_table
from phasegate.testing.faults.outcome import Outcome
from phasegate.testing.faults.run import FULL, REDUCED
from phasegate.testing.faults.scenarios import DURABLE, SCENARIOS
from phasegate.testing.faults.stack import Stack


def run(names: list[str], reduced: bool, root: Path) -> list[Outcome]:
    size = REDUCED if reduced else FULL
    stacks: dict[bool, Stack] = {}
    outcomes = []
    try:
        for name in names:
            durable = name in DURABLE
            if durable not in stacks:
                stacks[durable] = Stack(root / f"stack-{'s3' if durable else 'memory'}", durable)
                stacks[durable].start()
            started = time.monotonic()
            outcome = SCENARIOS[name](stacks[durable], size, root / name)
            outcome.notes.append(f"{time.monotonic() - started:.0f} s in all")
            outcomes.append(outcome)
            print(
                f"{name}: {'ok' if outcome.ok else 'NOT OK'}; "
                + "; ".join(outcome.problems + outcome.notes)
            )
    finally:
        for stack in stacks.values():
            stack.stop()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", help=f"some of: {', '.join(SCENARIOS)}")
    parser.add_argument("--reduced", action="store_true", help="the test suite's size")
    parser.add_argument("--keep", type=Path, help="keep logs and state in this folder")
    args = parser.parse_args()
    names = args.scenarios or list(SCENARIOS)
    if unknown := set(names) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    size = REDUCED if args.reduced else FULL
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run(names, args.reduced, args.keep or Path(tmp))
    title = (
        f"faults at {size.rate:.0f} generations/s for {size.duration_s:.0f} s each, "
        f"{size.hostile} bad messages, outages of {size.outage_s:.0f} s, "
        f"a broker hang of {size.hang_s:.0f} s"
    )
    print_table(title, Outcome.COLUMNS, [o.row() for o in outcomes], width=200)
    raise SystemExit(0 if all(o.ok for o in outcomes) else 1)


if __name__ == "__main__":
    main()
