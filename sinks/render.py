"""A report as a list of blocks, rendered as markdown or as one self-contained HTML page."""

from __future__ import annotations

import html as _html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Grid:
    """A table; columns after the first are right-aligned unless listed in ``left``."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    left: frozenset[int] = frozenset({0})


@dataclass(frozen=True)
class Figure:
    """An inline SVG chart (HTML only; markdown shows the caption)."""

    svg: str
    caption: str


Block = Heading | Text | Grid | Figure


def shown(value: float, digits: int) -> float:
    """``value`` rounded as it is shown, a zero without its sign: a difference of two
    equal means summed in another order is -1e-17 or +1e-17, and "-0.000" reads as a drop."""
    return round(value, digits) + 0.0


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            out.append(block.text)
        elif isinstance(block, Grid):
            align = ["---" if i in block.left else "---:" for i in range(len(block.headers))]
            lines = ["| " + " | ".join(map(_md_cell, block.headers)) + " |"]
            lines.append("|" + "|".join(align) + "|")
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
            out.append("\n".join(lines) if block.rows else lines[0] + "\n" + lines[1])
        else:
            out.append(f"*{block.caption}: chart in the HTML report*")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222 }
table { border-collapse: collapse; margin: .5em 0 1.2em }
th, td { padding: .25em .7em; border-bottom: 1px solid #ddd }
th { background: #f4f4f4 } td.r, th.r { text-align: right }
.pass { color: #17803d; font-weight: 600 } .fail { color: #c0262d; font-weight: 600 }
.inconclusive { color: #a26a00; font-weight: 600 } figure { margin: 1em 0 }
figcaption { color: #555; font-size: 90% }
"""


def _cell(text: str, tag: str, right: bool) -> str:
    value = _html.escape(str(text))
    classes = [c for c in (("r" if right else ""), value if value in _OUTCOMES else "") if c]
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<{tag}{cls}>{value}</{tag}>"


_OUTCOMES = {"pass", "fail", "inconclusive"}


def html(blocks: Sequence[Block], title: str) -> str:
    """One HTML page with inline CSS and SVG: no script, no external resource."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            body.append(f"<p>{_html.escape(block.text)}</p>")
        elif isinstance(block, Grid):
            n = len(block.headers)
            head = "".join(_cell(h, "th", i not in block.left) for i, h in enumerate(block.headers))
            rows = [
                "<tr>"
                + "".join(_cell(c, "td", i not in block.left) for i, c in enumerate(r))
                + "</tr>"
                for r in block.rows
            ]
            empty = [f'<tr><td colspan="{n}">none</td></tr>'] if not rows else []
            body.append(f"<table><tr>{head}</tr>{''.join(rows + empty)}</table>")
        else:
            caption = _html.escape(block.caption)
            body.append(f"<figure>{block.svg}<figcaption>{caption}</figcaption></figure>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
