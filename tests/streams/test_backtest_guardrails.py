"""The backtest replays the confidence and feedback guardrails as the worker judged them."""

from __future__ import annotations

import random
from datetime import timedelta

from phasegate.testing.guardrails import COMPLAINTS, CONFIDENCE, with_triggers
from schemas.events import Feedback
from schemas.plan import load_plan
from streams.backtest import Stored, replay
from tests.streams.conftest import make_result
from tests.streams.test_backtest import CADENCE, DROP, ROLLOUT, person, worker_alerts

PLAN = with_triggers(load_plan(), CONFIDENCE, COMPLAINTS)


def history(seconds: int = 300, per_second: int = 20) -> list[Stored]:
    """Both systems healthy; from DROP on the candidate's confidence falls from 0.85 to
    0.75 and a third of its feedback complains (the baseline's: a tenth). Every fourth
    result gets a verdict, a moment after it."""
    rng, out = random.Random(5), []
    for i in range(seconds * per_second):
        at = i / per_second
        for system in ("pipeline", "production"):
            worse = system == "production" and at >= DROP
            mean = 0.75 if worse else 0.85
            result = make_result(
                i,
                system=system,
                seconds=at,
                rollout=ROLLOUT,
                confidence=rng.betavariate(12 * mean, 12 * (1 - mean)),
            )
            result = result.model_copy(update={"weight": 50, "query_id": f"{system}{i}"})
            out.append(Stored(("results", i % 2), result))
            if i % 4 == 0:
                complains = rng.random() < (0.33 if worse else 0.1)
                verdict = Feedback(
                    rollout=ROLLOUT,
                    query_id=result.query_id,
                    system=system,
                    verdict="incorrect" if complains else "correct",
                    ts=result.ts + timedelta(milliseconds=20),
                )
                out.append(Stored(("feedback", i % 2), verdict))
    return sorted(out, key=lambda s: s.event.ts)


def test_the_replay_fires_the_confidence_and_feedback_guardrails_as_the_worker():
    log = [person("phase_started", -5, weight=75, phase=2)]
    events = history()
    replayed = replay(PLAN, ROLLOUT, log, events, **CADENCE).alerts
    fired = {a.metric for a in replayed if a.kind == "guardrail"}
    assert fired == {"mean_confidence", "complaint_rate"}
    figures = ["alert_id", "kind", "window", "observed", "samples", "action", "threshold"]
    figures += ["figures", "attribution"]
    as_worker = [a.model_dump(include=set(figures)) for a in worker_alerts(events, log, PLAN)]
    assert [a.model_dump(include=set(figures)) for a in replayed] == as_worker
