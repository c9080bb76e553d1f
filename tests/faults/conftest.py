"""The fault scenarios' stacks: durable (Tansu on s3rver) or in memory, one of each at most."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from phasegate.stack.clickhouse import INSTALL_HINT, server_binary
from phasegate.testing.faults.stack import Stack


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[bool], Stack]]:
    """``stacks(durable)``: the module's stack of that kind, started on first use, stopped
    after the module (a test worker of ``make test`` goes on with other files)."""
    if server_binary() is None:
        pytest.fail(f"the fault suite needs a ClickHouse server: {INSTALL_HINT}")
    started: dict[bool, Stack] = {}

    def get(durable: bool) -> Stack:
        if durable and (shutil.which("node") is None or shutil.which("npm") is None):
            pytest.fail("the durable broker needs Node.js and npm (s3rver)")
        if durable not in started:
            started[durable] = Stack(tmp_path_factory.mktemp("faults"), durable).start()
        return started[durable]

    yield get
    for stack in started.values():
        stack.stop()
