"""docker-compose.yml and Dockerfile, checked by structure (no Docker needed), plus
``docker compose config`` where a Docker engine answers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PHASEGATE_SERVICES = ("topics", "worker", "sink", "dashboard")
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _defaults(value: Any) -> Any:
    """Resolve compose interpolation as with an empty environment: ``${X:-d}`` -> ``d``."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, dict):
        return {k: _defaults(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_defaults(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _defaults(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return {k: str(v) for k, v in env.items()}


def _ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Published ports as (host ip, host port, container port)."""
    out = []
    for spec in service.get("ports", []):
        ip, host, container = str(spec).split(":")
        out.append((ip, int(host), int(container)))
    return out


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)} (empty host: all interfaces)."""
    out = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines()]
    return [
        (kw.upper(), args.strip())
        for kw, _, args in (ln.partition(" ") for ln in lines if ln and not ln.startswith("#"))
    ]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"kafka", "clickhouse", "grafana", *PHASEGATE_SERVICES} <= set(services)


def test_third_party_images_pinned_to_a_version(services: dict[str, Any]) -> None:
    expected = {
        "kafka": "apache/kafka",
        "clickhouse": "clickhouse/clickhouse-server",
        "grafana": "grafana/grafana",
    }
    for name, repo in expected.items():
        image, _, tag = services[name]["image"].partition(":")
        assert image == repo, name
        assert re.fullmatch(r"\d+\.\d+(\.\d+)*", tag), f"{name}: tag {tag!r} is not a version"


def test_phasegate_services_share_one_image_with_their_own_command(
    services: dict[str, Any],
) -> None:
    images = {services[s]["image"] for s in PHASEGATE_SERVICES}
    assert len(images) == 1
    assert all(services[s]["build"] == "." for s in PHASEGATE_SERVICES)
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["worker"]["command"] == ["worker"]
    assert services["sink"]["command"] == ["sink"]
    assert services["dashboard"]["command"] == ["dashboard"]


def test_restart_policies(services: dict[str, Any]) -> None:
    assert services["topics"]["restart"] == "no", "the topic creation runs once"
    for name in ("kafka", "clickhouse", "worker", "sink", "dashboard", "grafana"):
        assert services[name]["restart"] in {"always", "unless-stopped", "on-failure"}, name


def test_kafka_is_one_kraft_node_with_internal_and_host_listeners(
    services: dict[str, Any],
) -> None:
    kafka = services["kafka"]
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voter == f"{env['KAFKA_NODE_ID']}@kafka:{listeners['CONTROLLER'][1]}"
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"{name} advertises a port it does not listen on"
    # The host listener advertises the published host port; the internal one the service name.
    hosts = {host for host, _ in advertised.values()}
    assert hosts == {"kafka", "localhost"}
    published = {(host_port, container) for _, host_port, container in _ports(kafka)}
    for host, port in advertised.values():
        if host == "localhost":
            assert (port, port) in published, "host listener not published on its own port"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_healthchecks(services: dict[str, Any]) -> None:
    kafka = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in kafka
    internal = _listeners(_env(services["kafka"])["KAFKA_LISTENERS"])["PLAINTEXT"][1]
    assert f"--bootstrap-server localhost:{internal}" in kafka
    clickhouse = " ".join(services["clickhouse"]["healthcheck"]["test"])
    assert "clickhouse-client" in clickhouse
    assert "SELECT 1" in clickhouse


def test_clickhouse_server(services: dict[str, Any]) -> None:
    ch = services["clickhouse"]
    env = _env(ch)
    assert env["CLICKHOUSE_USER"] and env["CLICKHOUSE_PASSWORD"] and env["CLICKHOUSE_DB"]
    nofile = ch["ulimits"]["nofile"]
    assert nofile["soft"] >= 262144 and nofile["hard"] >= 262144
    assert {container for *_, container in _ports(ch)} == {9000, 8123}


def test_data_in_named_volumes(services: dict[str, Any], compose: dict[str, Any]) -> None:
    targets = {
        "kafka": _env(services["kafka"])["KAFKA_LOG_DIRS"],
        "clickhouse": "/var/lib/clickhouse",
    }
    for name, target in targets.items():
        source, _, path = services[name]["volumes"][0].partition(":")
        assert source in compose["volumes"], f"{name}: {source} is not a named volume"
        assert path.rstrip("/") == target


def test_depends_on_conditions(services: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name]["depends_on"].items()}

    assert conditions("topics") == {"kafka": "service_healthy"}
    assert conditions("worker") == {
        "kafka": "service_healthy",
        "topics": "service_completed_successfully",
    }
    assert conditions("sink") == {
        "kafka": "service_healthy",
        "clickhouse": "service_healthy",
        "topics": "service_completed_successfully",
    }
    assert conditions("dashboard") == {
        "kafka": "service_healthy",
        "topics": "service_completed_successfully",
        "worker": "service_started",
    }
    assert conditions("grafana") == {"clickhouse": "service_healthy"}


def test_phasegate_environment_names_real_settings(services: dict[str, Any]) -> None:
    prefix = Settings.model_config["env_prefix"]
    known = {prefix + field.upper() for field in Settings.model_fields}
    for name in PHASEGATE_SERVICES:
        env = _env(services[name])
        assert "PHASEGATE_BOOTSTRAP_SERVERS" in env, name
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
        values = {k.removeprefix(prefix).lower(): v for k, v in env.items()}
        Settings(**values)  # every value is valid for its field


def test_phasegate_environment_points_into_compose(services: dict[str, Any]) -> None:
    kafka_env = _env(services["kafka"])
    internal = {
        f"{host}:{port}"
        for host, port in _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"]).values()
        if host in services
    }
    ch = _env(services["clickhouse"])
    for name in PHASEGATE_SERVICES:
        env = _env(services[name])
        assert set(env["PHASEGATE_BOOTSTRAP_SERVERS"].split(",")) <= internal, name
    sink = _env(services["sink"])
    url = urlsplit(sink["PHASEGATE_CLICKHOUSE_URL"])
    assert (url.scheme, url.hostname, url.port) == ("clickhouse", "clickhouse", 9000)
    assert (url.username, url.password) == (ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"])
    assert sink["PHASEGATE_DATABASE"] == ch["CLICKHOUSE_DB"]


def test_published_ports_bind_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for ip, _, _ in _ports(service):
            assert ip == "127.0.0.1", f"{name} publishes on {ip}"
    worker_port = int(_env(services["worker"]).get("PHASEGATE_WORKER_PORT", 0))
    assert worker_port and [c for *_, c in _ports(services["worker"])] == [worker_port]


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    instructions = _dockerfile()
    (entrypoint,) = [json.loads(a) for kw, a in instructions if kw == "ENTRYPOINT"]
    assert entrypoint == list(_pyproject()["project"]["scripts"])


def test_dockerfile_builds_a_non_root_image_without_the_local_extra() -> None:
    instructions = _dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [a for kw, a in instructions if kw == "USER"]
    assert users and users[-1] not in {"root", "0"}
    installs = [a for kw, a in instructions if kw == "RUN" and "pip install" in a]
    assert installs and not any("[" in a for a in installs), "extras (local) must not be installed"


def test_dockerfile_copies_every_package() -> None:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = {a.split()[0] for kw, a in _dockerfile() if kw == "COPY"}
    assert packages <= copied, f"not copied into the image: {packages - copied}"


@pytest.mark.docker
def test_docker_compose_config_accepts_the_file() -> None:
    if not shutil.which("docker"):
        pytest.skip("no docker command")
    found = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if found.returncode:
        pytest.skip("the docker compose plugin is not installed")
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_dashboard_reads_the_worker_and_publishes_on_loopback(services: dict[str, Any]) -> None:
    env, worker = _env(services["dashboard"]), _env(services["worker"])
    assert env["PHASEGATE_WORKER_HOST"] == "worker"
    assert env["PHASEGATE_WORKER_PORT"] == worker["PHASEGATE_WORKER_PORT"]
    assert [c for *_, c in _ports(services["dashboard"])] == [int(env["PHASEGATE_DASHBOARD_PORT"])]
    assert "PHASEGATE_DASHBOARD_TOKEN" in env, "the token can be set from .env"
