"""What tests and benchmarks share: phasegate's processes, the fault harness, simulations.

Like a framework's testing module, it is shipped so that ``bench/`` and ``tests/`` both
import it and neither imports the other: :mod:`.processes` (a real worker, sink or
notifier as a subprocess), :mod:`.topics` (read a topic back, a private broker),
:mod:`.webhook` (a loopback receiver), :mod:`.faults` (the whole stack under one fault at
a time) and :mod:`.sample_ratio` (simulated rollouts through stage 2).
"""
