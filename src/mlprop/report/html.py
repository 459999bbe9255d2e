"""A small HTML vocabulary for reports: one self-contained page, no scripts, no network."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["badge", "esc", "md_cell", "md_table", "page", "pre", "table"]

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#1b1f24}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #d0d7de;
padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.b{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;color:#fff}
.passed,.same,.killed,.improvement{background:#1a7f37}.failed,.error,.regression,
.survived{background:#cf222e}.skipped,.xfailed,.noisy,.other{background:#6e7781}
.xpassed{background:#bf8700}
figure{display:inline-block;margin:.4em 1em .4em 0;vertical-align:top}
figure img{image-rendering:pixelated;border:1px solid #d0d7de;max-width:100%}
figcaption{font-size:.85em;color:#57606a}
.failure{border-left:4px solid #cf222e;padding-left:1em;margin:1.5em 0}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def badge(status: str) -> str:
    return f'<span class="b {esc(status)}">{esc(status)}</span>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def table(header: Sequence[str], rows: Iterable[Sequence[str]],
          numeric: Sequence[int] = ()) -> str:
    """``rows`` are already HTML; ``numeric`` column indexes are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{cell}</td>' if index in numeric else
                         f"<td>{cell}</td>" for index, cell in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return lines
