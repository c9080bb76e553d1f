"""The alerts the dashboard shows, followed from the alerts topic.

The rollout log's states are :class:`rollout.log.RolloutLog`; both follow their topic
with a :class:`rollout.follower.Follower` (``follower``: start and close it).
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from rollout.follower import Follower
from schemas.events import Alert
from schemas.settings import Settings


class AlertLog:
    """The most recent alerts (``keep`` of them) and a count per (rollout, kind)."""

    def __init__(self, settings: Settings, keep: int = 50) -> None:
        self._recent: collections.deque[Alert] = collections.deque(maxlen=keep)
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._ids: set[Any] = set()
        self._lock = threading.Lock()
        self.follower = Follower(
            settings, settings.topics.alerts, Alert, self.apply, name="phasegate-alert-log"
        )

    def apply(self, alert: Alert) -> None:
        with self._lock:
            if alert.alert_id in self._ids:  # delivered again, or raised again by a replay
                return
            self._ids.add(alert.alert_id)
            self._recent.append(alert)
            self.counts[(alert.rollout, alert.kind)] += 1

    def recent(self, rollout: str) -> list[Alert]:
        """This rollout's recent alerts, newest first."""
        with self._lock:
            return [a for a in reversed(self._recent) if a.rollout == rollout]
