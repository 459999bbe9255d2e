"""The kill matrix of both references (docs/pages/explanation/audit.md), from
``mlprop faults --json`` files.

    .venv/bin/python benchmarks/kill_matrix_table.py DIGITS.json COLOUR.json
        [--before-digits F --before-colour F]

One row per fault: for each reference, how many properties caught it and whether the
properties the catalogue names for that target were among them (``named`` / ``MISSED``), or
``-`` where the fault cannot be planted; with ``--before-*``, the same figure from an earlier
sweep in brackets where it differs. Then the totals. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _rows(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    return {row["fault"]: row for row in json.loads(path.read_text())}


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    named = all(name in row["caught_by"] for name in row["expected"])
    return f"{len(row['caught_by'])} ({'named' if named else 'MISSED'})"


def table(after: list[dict[str, dict]], before: list[dict[str, dict]]) -> str:
    faults = list(dict.fromkeys(name for rows in after for name in rows))
    lines = ["| fault | component | digits | colour |", "| --- | --- | --- | --- |"]
    for name in faults:
        component = next(rows[name]["component"] for rows in after if name in rows)
        cells = []
        for now, then in zip(after, before, strict=True):
            cell, old = _cell(now.get(name)), _cell(then.get(name)) if then else None
            cells.append(cell if old is None or old == cell else f"{cell} [before: {old}]")
        lines.append(f"| `{name}` | {component} | {' | '.join(cells)} |")
    for label, sweeps in (("after", after), ("before", before)):
        if not any(sweeps):
            continue
        parts = []
        for target, rows in zip(("digits", "colour"), sweeps, strict=True):
            named = sum(all(p in r["caught_by"] for p in r["expected"]) for r in rows.values())
            caught = sum(bool(r["caught_by"]) for r in rows.values())
            parts.append(f"{target}: {caught} of {len(rows)} caught, {named} by the "
                         "properties named for it")
        lines.append(f"\n{label}: " + "; ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("digits", type=Path)
    parser.add_argument("colour", type=Path)
    parser.add_argument("--before-digits", type=Path, default=None)
    parser.add_argument("--before-colour", type=Path, default=None)
    args = parser.parse_args(argv)
    print(table([_rows(args.digits), _rows(args.colour)],
                [_rows(args.before_digits), _rows(args.before_colour)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
