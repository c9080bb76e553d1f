"""The docs site builds in strict mode: no broken page, link or anchor; references generated."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.markdown import ROOT

pytestmark = pytest.mark.timeout(120)


def require_mkdocs() -> None:
    missing = [m for m in ("mkdocs", "material") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed: pip install -e '.[docs]'"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the docs tools: {reason}", pytrace=False)
    pytest.skip(reason)


def test_the_site_builds_strictly_with_generated_references(tmp_path: Path) -> None:
    require_mkdocs()
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "phasegate rollout set-weight" in (site / "reference/cli/index.html").read_text()
    assert "phasegate.result/1" in (site / "reference/contract/index.html").read_text()
    assert (site / "reference/schemas/result.v1.schema.json").exists()
    assert "make test" in (site / "index.html").read_text()
