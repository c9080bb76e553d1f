"""The rollout: its log, the fold over it, and the rules that steer it.

Every part that reads or changes a rollout (the application's Router, the stream worker,
the CLI, the dashboard, the reports) goes through this package:

- :mod:`rollout.state`: the rollout state as a pure fold over the rollout log.
- :mod:`rollout.steering`: what a person may do to a rollout, from the plan's phases.
"""
