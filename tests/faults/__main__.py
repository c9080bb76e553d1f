"""``python -m tests.faults [--reduced] [SCENARIO ...]``: the fault table at full size."""

from bench.faults import main

main()
