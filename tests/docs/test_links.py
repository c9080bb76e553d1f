"""No link in README.md or docs/ leaves the repository or points at nothing."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.docs.markdown import ROOT, anchors, links, pages


def broken(page: Path, target: str) -> str | None:
    """Why ``target``, linked from ``page``, is not a page, file or anchor of the repo."""
    parts = urlsplit(target)
    if parts.scheme in {"http", "https", "mailto"}:
        return None
    if parts.scheme or parts.netloc or target.startswith("/") or ".." in Path(parts.path).parts:
        return "points outside the repository"
    path = (page.parent / parts.path).resolve() if parts.path else page
    if not path.is_relative_to(ROOT) or not path.exists():
        return "no such file"
    if parts.fragment and parts.fragment not in anchors(path.read_text()):
        return f"no heading #{parts.fragment} in {path.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_link_stays_in_the_repository_and_exists(page: Path) -> None:
    found = links(page.read_text())
    problems = [f"{t}: {why}" for t in found if (why := broken(page, t))]
    assert not problems, f"{page.relative_to(ROOT)}: " + "; ".join(problems)


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("../shared/notes/design.md", "points outside the repository"),
        ("docs/missing.md", "no such file"),
        ("docs/design.md#no-such-heading", "no heading #no-such-heading in docs/design.md"),
        ("file:///etc/passwd", "points outside the repository"),
    ],
)
def test_the_check_finds_what_it_is_for(target: str, why: str) -> None:
    assert broken(ROOT / "README.md", target) == why


def test_links_are_read_from_prose_only() -> None:
    text = "[a](docs/sql.md) `[b](x.md)`\n```\n[c](../y.md)\n```\n![d](docs/dashboard.png)"
    assert links(text) == ["docs/sql.md", "docs/dashboard.png"]
