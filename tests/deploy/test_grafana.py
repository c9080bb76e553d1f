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

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "phasegate.json"
PLUGIN = "grafana-clickhouse-datasource"


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
        "Response time: P95, P99 and mean": "quantilesTDigestMerge(0.95, 0.99)",
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
