"""The loop-lag figure: overshoot of each sleep, with and without the run-queue time."""

from __future__ import annotations

import asyncio
import time

from streams.looplag import LoopLag, run_queue_s


def test_lag_is_the_overshoot_and_held_leaves_out_the_wait_for_a_cpu():
    now = [0.0]
    lag = LoopLag(period_s=0.01, span_s=10, clock=lambda: now[0])
    lag.record(0.009)  # early: no lag
    lag.record(0.210, queued_s=0.150)  # 200 ms late, 150 of them without a CPU
    assert lag.json() == {"max": 200.0, "recent": 200.0, "held_max": 50.0}
    now[0] = 11.0
    lag.record(0.015)
    assert lag.json() == {"max": 200.0, "recent": 5.0, "held_max": 50.0}


def test_a_blocked_loop_shows_in_full():
    async def main() -> LoopLag:
        lag = LoopLag()
        task = asyncio.create_task(lag.run())
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # the loop is held, as a blocking call would
        await asyncio.sleep(0.05)
        task.cancel()
        return lag

    lag = asyncio.run(main())
    assert lag.held_max_ms > 150 and lag.max_ms >= lag.held_max_ms
    assert run_queue_s() >= 0
