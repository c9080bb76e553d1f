"""The Router: which system serves a unit, sticky, at the weight the rollout log says.

Routing is a pure function of ``(rollout, unit_id, weight)``: a stable hash puts every
unit in one of 10,000 buckets, and a unit goes to the candidate iff its bucket is below
``weight * 100``. Raising the weight therefore only moves new units to the candidate,
and stepping back (100 -> 75) returns exactly the units that moved last.

The weight is the fold (:mod:`rollout.state`) over the rollout topic, which a
:class:`rollout.follower.Follower` thread replays from the beginning and then follows (a
change takes effect in well under a second). Until the log has been read, or while it
cannot be read, the Router keeps its last known weight (``default_weight`` at start: 0,
all baseline, unless configured) and the follower says so once in the log. Nothing here
raises into the caller.
"""

from __future__ import annotations

import hashlib
import logging

from rollout.follower import Follower
from rollout.state import RolloutState
from schemas.events import RolloutEvent
from schemas.settings import Settings

log = logging.getLogger(__name__)

BUCKETS = 10_000


def bucket(rollout: str, unit_id: str) -> int:
    """The unit's fixed bucket in ``0..9999`` for this rollout (blake2b, stable everywhere)."""
    digest = hashlib.blake2b(f"{rollout}\x00{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def to_candidate(rollout: str, unit_id: str, weight: int) -> bool:
    """True iff the unit is served by the candidate at ``weight`` percent."""
    return bucket(rollout, unit_id) < weight * (BUCKETS // 100)


class Router:
    """Sticky weighted routing that follows the rollout log (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None,
        rollout: str,
        default_weight: int = 0,
        *,
        candidate: str = "production",
        baseline: str = "pipeline",
        follow: bool = True,
        retry_s: float = 2.0,
    ) -> None:
        self.settings = settings or Settings()
        self.rollout = rollout
        self.candidate = candidate
        self.baseline = baseline
        self._state = RolloutState(rollout=rollout, weight=default_weight)
        self._follower = Follower(
            self.settings,
            self.settings.topics.rollout,
            RolloutEvent,
            self._apply,
            name=f"phasegate-router-{rollout}",
            retry_s=retry_s,
        )
        if follow:
            self._follower.start()

    @property
    def state(self) -> RolloutState:
        return self._state

    @property
    def weight(self) -> int:
        return self._state.weight

    def choose(self, unit_id: str) -> str:
        """The name of the system that serves ``unit_id`` now. Never raises."""
        try:
            if to_candidate(self.rollout, str(unit_id), self._state.weight):
                return self.candidate
        except Exception:  # pragma: no cover - routing must never break the app
            log.exception("routing failed for unit %r; serving the baseline", unit_id)
        return self.baseline

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the rollout log has been read to its end once; ``False`` on timeout."""
        return self._follower.caught_up.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        self._follower.close(timeout)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _apply(self, event: RolloutEvent) -> None:
        state = self._state.apply(event)
        if state.weight != self._state.weight:
            log.info(
                "rollout %r: candidate weight %d -> %d",
                self.rollout,
                self._state.weight,
                state.weight,
            )
        self._state = state
