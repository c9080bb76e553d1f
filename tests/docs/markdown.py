"""Reading the project's markdown: its files, marked blocks, links and heading anchors."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def pages() -> list[Path]:
    """README.md and every page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """``text`` without fenced blocks and code spans, where a link is only an example."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link and image target of ``text``'s prose, in order."""
    return LINK.findall(prose(text))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and mkdocs both make it (no runs of punctuation)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"\s+", "-", text)


def anchors(text: str) -> set[str]:
    """The anchors of ``text``'s headings."""
    return {slug(h) for h in HEADING.findall(FENCE.sub("", text))}


def marked_block(text: str, name: str) -> str:
    """The fenced block between ``<!-- name -->`` and ``<!-- /name -->``, fences removed."""
    inner = text.split(f"<!-- {name} -->", 1)[1].split(f"<!-- /{name} -->", 1)[0]
    lines = inner.strip().splitlines()
    assert lines[0].startswith("```") and lines[-1] == "```", f"{name}: not one fenced block"
    return "\n".join(lines[1:-1])
