"""The metric registry: the plan's metric names, and the docs that describe each metric."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from schemas.metrics import METRICS, Quantile, metric, quantile_of
from schemas.plan import Criterion, GateMetric, TriggerMetric

ROOT = Path(__file__).resolve().parents[2]


def table(path: Path, heading: str) -> dict[str, list[str]]:
    """The rows of the first table after ``heading``: first cell's metric names -> cells."""
    text = path.read_text().split(heading, 1)[1]
    rows: dict[str, list[str]] = {}
    for line in text.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            rows[name] = cells[1:]
    return rows


def test_the_plan_accepts_exactly_the_registry_metrics() -> None:
    assert set(get_args(GateMetric)) == set(METRICS)
    assert set(get_args(TriggerMetric)) == {n for n, m in METRICS.items() if m.trigger}
    for name, m in METRICS.items():
        if m.comparable:
            Criterion(metric=name, compare="baseline")
        else:
            with pytest.raises(ValueError, match="compare works on rates and means"):
                Criterion(metric=name, compare="baseline")


def test_quantile_metrics_know_their_level_and_interval_levels() -> None:
    assert quantile_of("p90_latency_ms") == 0.9
    p99 = metric("p99_latency_ms").estimator
    assert isinstance(p99, Quantile)
    q, low, high = p99.levels(100)
    assert q == 0.99 and low < q < high == 1.0
    with pytest.raises(ValueError, match="not a latency quantile"):
        quantile_of("success_rate")
    with pytest.raises(KeyError, match="unknown metric 'speed'"):
        metric("speed")


def test_the_statistics_page_describes_every_metric_with_its_unit_and_direction() -> None:
    rows = table(ROOT / "docs" / "statistics.md", "## Metrics")
    assert set(rows) == set(METRICS)
    for name, m in METRICS.items():
        unit, better, _, comparison = rows[name]
        assert (unit, better) == (m.unit, m.better), name
        assert comparison == (m.estimator.comparison or "none"), name


def test_docs_give_the_registry_sql_of_every_metric() -> None:
    rows = table(ROOT / "docs" / "sql.md", "### Metrics: the SQL of each")
    assert set(rows) == set(METRICS)
    for name, m in METRICS.items():
        assert rows[name][0].split("` (")[0].strip("`") == m.sql, name
