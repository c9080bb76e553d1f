"""Deployment tests: tests marked ``docker`` are skipped, with the reason, without an engine."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@functools.cache
def no_docker_reason() -> str | None:
    """Why no Docker engine can be used here, or None if one answers a ping (within 3 s)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # no client library, no socket, refused, timed out...
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"no Docker engine: {first[:200]}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [i for i in items if i.get_closest_marker("docker") and HERE in i.path.parents]
    if marked and (reason := no_docker_reason()):
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))
