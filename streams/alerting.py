"""Threshold alerts on merged windows, fired once per (rollout, system, window)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import NAMESPACE_URL, UUID, uuid5

from schemas.events import Alert, AlertWindow
from streams.aggregate import WindowStats
from streams.windows import to_datetime


def alert_id(rollout: str, system: str, kind: str, start: int) -> UUID:
    """The same incident gets the same id, however often it is raised."""
    return uuid5(NAMESPACE_URL, f"phasegate:{rollout}:{system}:{kind}:{start}")


@dataclass
class SuccessRateAlerts:
    """Alert when a window's success rate is under ``threshold`` with enough samples.

    The judgement uses the Wilson interval's upper bound, so a window alerts only when
    the rate is below the threshold with 95% confidence, not on noise.
    """

    threshold: float
    min_samples: int
    window_seconds: int
    fired: set[tuple[str, str, int]] = field(default_factory=set)

    def check(self, rollout: str, system: str, start: int, stats: WindowStats) -> Alert | None:
        key = (rollout, system, start)
        rate = stats.success_rate
        if key in self.fired or rate is None or stats.count < self.min_samples:
            return None
        if rate.high >= self.threshold:
            return None
        self.fired.add(key)
        return Alert(
            alert_id=alert_id(rollout, system, "gate_failed", start),
            rollout=rollout,
            system=system,
            severity="critical",
            kind="gate_failed",
            metric="success_rate",
            observed=rate.value,
            threshold=self.threshold,
            window=AlertWindow(
                start=to_datetime(start), end=to_datetime(start + self.window_seconds)
            ),
            samples=stats.count,
        )

    def forget(self, before: int) -> None:
        self.fired = {k for k in self.fired if k[2] >= before}
