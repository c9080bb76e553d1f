"""Stage 2 state: merged views per rollout and the alerts they raise."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.events import Alert
from schemas.internal import Partial
from streams.alerting import SuccessRateAlerts
from streams.windows import RolloutView


@dataclass
class Stage2:
    window_seconds: int
    retention: int
    alerts: SuccessRateAlerts
    views: dict[str, RolloutView] = field(default_factory=dict)

    def apply(self, partial: Partial) -> list[Alert]:
        """Merge a partial; return the alerts the changed window raises now."""
        view = self.views.get(partial.rollout)
        if view is None:
            view = self.views[partial.rollout] = RolloutView(partial.rollout, self.window_seconds)
        system, start = view.apply(partial)
        alert = self.alerts.check(partial.rollout, system, start, view.window(system, start))
        return [alert] if alert else []

    def expire(self, now: float) -> None:
        before = int(now) - self.retention
        for view in self.views.values():
            view.expire(before)
        self.alerts.forget(before)
