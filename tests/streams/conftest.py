"""Event factories for the pure stream tests (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import ErrorInfo, Result

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_result(
    i: int,
    *,
    system: str = "production",
    success: bool = True,
    latency_ms: float = 100.0,
    confidence: float = 0.9,
    seconds: float = 0.0,
    rules: tuple[str, ...] = (),
    critical: bool = False,
    rollout: str = "kai",
    segment: str | None = None,
) -> Result:
    return Result(
        rollout=rollout,
        system=system,
        query_id=f"q{i}",
        unit_id=f"u{i}",
        ts=T0 + timedelta(seconds=seconds),
        success=success,
        confidence=confidence,
        latency_ms=latency_ms,
        error=None if success else ErrorInfo(type="Timeout", critical=critical),
        rules=list(rules),
        segment=segment,
    )


@pytest.fixture
def result_factory():
    return make_result
