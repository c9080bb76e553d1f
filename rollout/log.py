"""The rollout log as every application-side reader sees it: followed from a thread.

:class:`RolloutLog` keeps the state of every rollout in the log (``rollout.state``)
current with a :class:`~rollout.follower.Follower`; :func:`current_state` is what a
command acts on, and it refuses to guess: without the whole log read in time it raises
:class:`LogUnavailable`.
"""

from __future__ import annotations

from rollout.follower import Follower
from rollout.state import Rollouts, RolloutState
from schemas.events import RolloutEvent
from schemas.settings import Settings


class LogUnavailable(RuntimeError):
    """The rollout log could not be read to its end in time."""


class RolloutLog(Rollouts):
    """Every rollout's state, following the rollout log (``follower``: start and close it)."""

    def __init__(self, settings: Settings, retry_s: float = 2.0) -> None:
        super().__init__()
        self.follower = Follower(
            settings,
            settings.topics.rollout,
            RolloutEvent,
            self.apply,
            name="phasegate-rollout-log",
            retry_s=retry_s,
        )


def current_state(settings: Settings, rollout: str, timeout_s: float = 10.0) -> RolloutState:
    """The state of ``rollout`` after reading the whole log as it is now."""
    log = RolloutLog(settings, retry_s=0.5)
    with log.follower:
        if not log.follower.caught_up.wait(timeout_s):
            why = log.follower.error or (
                f"{settings.topics.rollout} at {settings.bootstrap_servers} was not read to its end"
            )
            raise LogUnavailable(
                f"cannot establish the state of {rollout} within {timeout_s:g} s: {why}; "
                "nothing was done"
            )
        return log.state(rollout)
