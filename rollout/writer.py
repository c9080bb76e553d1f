"""Appending to the rollout log: one event, written and acknowledged by the broker.

The one write path of every command and of the dashboard. It reuses the producers'
:class:`~producers.Emitter` (keyed by rollout, acks=all) and waits for the
acknowledgement, so the caller can say whether the change is in the log.
"""

from __future__ import annotations

from producers.emitter import Emitter
from schemas.events import RolloutEvent
from schemas.settings import Settings


class NotWritten(RuntimeError):
    """The broker did not acknowledge the event in time (the emitter keeps retrying it)."""


class RolloutWriter:
    """Append :class:`RolloutEvent` s to ``settings.topics.rollout`` and wait for the ack."""

    def __init__(self, settings: Settings, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._emitter = Emitter(settings)

    def append(self, event: RolloutEvent) -> None:
        """Write ``event``; :class:`NotWritten` if the broker has not acknowledged it."""
        if not self._emitter.emit(event) or not self._emitter.flush(self.timeout_s):
            raise NotWritten(
                f"the broker at {self.settings.bootstrap_servers} has not acknowledged the "
                f"event within {self.timeout_s:g} s; it is retried until the writer closes, "
                "so read the rollout log before acting again"
            )

    def close(self, timeout_s: float | None = None) -> None:
        self._emitter.close(self.timeout_s if timeout_s is None else timeout_s)
