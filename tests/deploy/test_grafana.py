"""Grafana in docker-compose: the provisioned data source and the dashboard, by structure.

Grafana cannot run here; tests/sinks/test_grafana_sql.py runs every panel's SQL on
ClickHouse 18.16 and chdb.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from schemas.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "phasegate.json"
PLUGIN = "grafana-clickhouse-datasource"
UNITS = {"share": "percentunit", "ms": "ms", "score": "none", "count": "short"}
"""The Grafana unit of each unit of the metric registry (``schemas.metrics``)."""
ROLLUP = re.compile(r"\bFROM\s+results_1[mh]\b")


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, rawSql) of every panel target, the annotations and the variables."""
    out = [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p["targets"]]
    out += [(a["name"], a["target"]["rawSql"]) for a in dashboard["annotations"]["list"]]
    out += [(v["name"], v["query"]) for v in dashboard["templating"]["list"]]
    return out


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def datasource() -> dict[str, Any]:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    (source,) = doc["datasources"]
    return source


def test_the_service_installs_a_pinned_plugin_and_mounts_the_provisioning(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    name, version = grafana["environment"]["GF_INSTALL_PLUGINS"].split()
    assert name == PLUGIN and re.fullmatch(r"\d+\.\d+\.\d+", version)
    mounts = {}
    for volume in grafana["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = source
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert (ROOT / mounts["/etc/grafana/dashboards"]) == GRAFANA / "dashboards"
    assert mounts["/var/lib/grafana"] in compose["volumes"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home).name == DASHBOARD.name


def test_the_data_source_is_the_compose_clickhouse(
    compose: dict[str, Any], datasource: dict[str, Any]
) -> None:
    assert datasource["type"] == PLUGIN
    data = datasource["jsonData"]
    assert (data["host"], data["port"], data["protocol"]) == ("clickhouse", 9000, "native")
    env = compose["services"]["grafana"]["environment"]
    clickhouse = compose["services"]["clickhouse"]["environment"]
    # Grafana expands $NAME from its environment; compose gives it the server's values.
    assert data["username"] == "$CLICKHOUSE_USER"
    assert datasource["secureJsonData"]["password"] == "$CLICKHOUSE_PASSWORD"
    assert data["defaultDatabase"] == "$PHASEGATE_DATABASE"
    for name in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"):
        assert env[name] == clickhouse[name]
    assert env["PHASEGATE_DATABASE"] == clickhouse["CLICKHOUSE_DB"]


def test_the_dashboard_provider_loads_the_mounted_folder() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "phasegate.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


def test_every_panel_has_a_title_the_data_source_and_sql(datasource: dict[str, Any]) -> None:
    dashboard = load_dashboard()
    uid = datasource["uid"]
    assert dashboard["uid"] and dashboard["title"]
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(set(titles)) == len(titles)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in dashboard["panels"]:
        assert panel["title"].strip() and panel["type"]
        assert panel["datasource"] == {"type": PLUGIN, "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            assert target["editorType"] == "sql"
            assert target["rawSql"].lstrip().upper().startswith("SELECT"), panel["title"]
            timeseries = panel["type"] == "timeseries"
            assert target["format"] == (0 if timeseries else 1), panel["title"]
            if timeseries:
                assert re.search(r"\bAS time\b", target["rawSql"]), panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid


def test_the_seeds_panels_are_there() -> None:
    sql = {title: q for title, q in panel_queries(load_dashboard())}
    wanted = {
        "Mean confidence": "confidence_sum",
        "Confidence distribution": "floor(confidence",
        "Response time: P95, P99 and mean": "quantilesTDigestMerge(0.95)",
        "Success rate": "successes",
        "Error types": "error_type",
        "Candidate weight": "rollout_events",
        "Queries per system": "sum(events)",
        "Top 10 rules": "LIMIT 10",
        "Feedback by verdict": "verdict",
    }
    for title, fragment in wanted.items():
        assert fragment in sql[title], title
    for title, query in sql.items():
        assert "${rollout:sqlstring}" in query or title == "rollout", title


def selected(sql: str) -> list[tuple[str, str]]:
    """(expression, alias) of each aliased item of the outer SELECT list."""
    body = re.split(r"\bFROM\b", re.sub(r"^\s*SELECT\s+", "", sql), maxsplit=1)[0]
    items, depth, start = [], 0, 0
    for i, char in enumerate(body + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(body[start:i].strip())
            start = i + 1
    return [
        (m.group(1).strip(), m.group(2))
        for m in (re.fullmatch(r"(.+)\s+AS\s+(\w+)", item, re.S) for item in items)
        if m
    ]


def field_unit(panel: dict[str, Any], name: str) -> str | None:
    config = panel.get("fieldConfig", {})
    for override in config.get("overrides", []):
        if override["matcher"] == {"id": "byName", "options": name}:
            units = [p["value"] for p in override["properties"] if p["id"] == "unit"]
            if units:
                return units[0]
    return config.get("defaults", {}).get("unit")


def test_the_panels_show_metrics_by_their_registry_name_unit_and_expression() -> None:
    shown = set()
    for panel in load_dashboard()["panels"]:
        for target in panel["targets"]:
            sql = target["rawSql"]
            for expr, alias in selected(sql):
                looks_like_a_metric = re.fullmatch(r"p\d+|.*_(rate|ms)|mean|critical_.*", alias)
                assert alias in METRICS or not looks_like_a_metric, (panel["title"], alias)
                if alias not in METRICS:
                    continue
                m = METRICS[alias]
                assert field_unit(panel, alias) == UNITS[m.unit], (panel["title"], alias)
                if ROLLUP.search(sql):  # from the rollups: the registry's own expression
                    assert expr == m.sql, (panel["title"], alias)
                shown.add(alias)
    assert {"success_rate", "mean_confidence", "p95_latency_ms", "p99_latency_ms"} <= shown
