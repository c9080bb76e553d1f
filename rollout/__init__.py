"""The rollout: its log, the fold over it, and the rules that steer it.

Every part that reads or changes a rollout (the application's Router, the stream worker,
the CLI, the dashboard, the reports) goes through this package:

- :mod:`rollout.state`: the rollout state as a pure fold over the rollout log;
- :mod:`rollout.steering`: what a person may do to a rollout, from the plan's phases;
- :mod:`rollout.reading`: reading a log topic, without I/O (positions, the end offsets
  seen at start, the caught-up rule, decoding);
- :mod:`rollout.follower` (a thread, kafka-python) and :mod:`rollout.async_follower`
  (asyncio, aiokafka): its two transports;
- :mod:`rollout.log`: every rollout's state, followed from a thread, and the state a
  command acts on;
- :mod:`rollout.writer`: the one way to append to the rollout log.
"""
