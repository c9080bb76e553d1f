"""Topic names and partition counts: the one place they are defined."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    """The contract's topics, by their unprefixed names."""

    RESULTS = "results"
    FEEDBACK = "feedback"
    ROLLOUT = "rollout"
    ALERTS = "alerts"
    PARTIALS = "partials"
    DLQ = "dlq"


PARTITIONS: dict[Topic, int] = {
    Topic.RESULTS: 4,  # keyed by unit_id; the unit of stream parallelism
    Topic.FEEDBACK: 4,
    Topic.ROLLOUT: 1,  # one ordered log: the weight is a fold over it
    Topic.ALERTS: 1,
    Topic.PARTIALS: 4,  # keyed by rollout: stage 2 merges one rollout in one place
    Topic.DLQ: 1,
}


@dataclass(frozen=True)
class Topics:
    """Full topic names under a prefix (default ``phasegate.``)."""

    prefix: str = "phasegate."

    def name(self, topic: Topic) -> str:
        return f"{self.prefix}{topic.value}"

    @property
    def results(self) -> str:
        return self.name(Topic.RESULTS)

    @property
    def feedback(self) -> str:
        return self.name(Topic.FEEDBACK)

    @property
    def rollout(self) -> str:
        return self.name(Topic.ROLLOUT)

    @property
    def alerts(self) -> str:
        return self.name(Topic.ALERTS)

    @property
    def partials(self) -> str:
        return self.name(Topic.PARTIALS)

    @property
    def dlq(self) -> str:
        return self.name(Topic.DLQ)

    def all(self) -> dict[str, int]:
        """Every topic's full name with its partition count."""
        return {self.name(t): n for t, n in PARTITIONS.items()}
