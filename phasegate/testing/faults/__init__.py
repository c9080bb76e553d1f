"""The whole stack as real processes under load, one fault at a time, and the checks.

:mod:`.stack` (broker and ClickHouse), :mod:`.run` (one scenario's worker, sink and load,
judged), :mod:`.outcome` (its figures), :mod:`.hostile` (bad messages),
:mod:`.scenarios` (the fault table).
"""
