"""Reports of ``mlprop audit --report DIR`` and ``mlprop bench compare --report DIR``.

Both write ``report.html`` (self-contained: plots inlined), ``summary.md`` (appended to
``$GITHUB_STEP_SUMMARY`` when set), ``results.json`` (the command's JSON) and the plots as
PNG files beside them. Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import io
import json
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlprop.report.html import badge, esc, md_table, page, pre, table
from mlprop.report.images import png_data_uri
from mlprop.report.output import append_step_summary, write_report_files

__all__ = ["AUDIT_HISTORY_PNG", "audit_files", "bench_files", "covering_tests",
           "load_history", "write_files"]

AUDIT_HISTORY_PNG = "score-history.png"


def _figure_png(draw) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=100)
    axes = figure.subplots()
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="{png_data_uri(png)}">'


def write_files(directory: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    written = write_report_files(directory, files)
    if "summary.md" in files:
        append_step_summary(str(files["summary.md"]))
    return written


# --------------------------------------------------------------------------- audit


def covering_tests(root: Path) -> dict[str, list[str]]:
    """mutmut's map of mangled function (``mlprop.digits.train.x_train``) -> the tests that
    cover it (``mutants/mutmut-stats.json``; empty when there is none)."""
    from mlprop.audit.mutation import load_stats

    return load_stats(root)[0]


def load_history(paths: Sequence[Path]) -> list[tuple[str, float | None]]:
    """``(label, score)`` of earlier audit JSON files, in the order given; the label is
    the file's name. Raises ``ValueError`` naming a file that is not an audit report."""
    history = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--history {path}: not readable as an audit JSON ({exc})"
                             ) from None
        if not isinstance(data, dict) or "score" not in data:
            raise ValueError(f"--history {path}: not an mlprop audit JSON (no 'score')")
        score = data["score"]
        history.append((Path(path).name, float(score) if score is not None else None))
    return history


def _module_path(module: str) -> str:
    return "src/" + module.replace(".", "/") + ".py"


def audit_files(report: Mapping[str, Any], *, covering: Mapping[str, Sequence[str]] = {},
                history: Sequence[tuple[str, float | None]] = ()) -> dict[str, str | bytes]:
    """The audit report's files (see the module docstring)."""
    mutmut = report.get("mutmut", {})
    score = report.get("score")
    verdict = report.get("verdict", "")
    modules = mutmut.get("modules", {})
    rows, md_rows = [], []
    for module, t in sorted(modules.items()):
        value = t.get("score")
        text = "n/a" if value is None else f"{value:.1f}%"
        rows.append([f"<code>{esc(_module_path(module))}</code>", esc(t.get("total", "")),
                     esc(t.get("killed", "")), esc(t.get("timeout", "")),
                     esc(t.get("survived", "")), esc(t.get("no_tests", "")),
                     esc(t.get("equivalent", "")), esc(text)])
        md_rows.append([_module_path(module), t.get("total", ""), t.get("killed", ""),
                        t.get("survived", ""), text])
    parts = [f"<h1>mlprop audit</h1><p><b>{esc(verdict)}</b></p>",
             "<h2>Mutation score per file</h2>",
             table(["file", "total", "killed", "timeout", "survived", "no tests",
                    "equivalent", "score"], rows, numeric=(1, 2, 3, 4, 5, 6, 7))]
    survivors = mutmut.get("survivors", [])
    parts.append(f"<h2>Undetected mutants ({len(survivors)})</h2>")
    for survivor in survivors:
        key = survivor["name"].partition("__mutmut_")[0]
        tests = list(covering.get(key, []))
        covered = ("covered by: " + ", ".join(f"<code>{esc(t)}</code>" for t in tests[:20])
                   + (f" and {len(tests) - 20} more" if len(tests) > 20 else "")
                   if tests else "no test covers this function")
        parts.append(f"<h3><code>{esc(survivor['name'])}</code> {badge(survivor['status'])}"
                     f"</h3><p>{covered}</p>" + pre(survivor.get("diff", "")))
    ml = report.get("ml_mutants")
    if ml:
        rows_ml = [[esc(op), *(esc(d.get(k, "")) for k in ("total", "killed", "timeout",
                                                           "survived", "equivalent",
                                                           "other")),
                    esc(_rate(d))] for op, d in sorted(ml.get("by_operator", {}).items())]
        overall = ml.get("overall", {})
        rows_ml.append(["<b>TOTAL</b>", *(esc(overall.get(k, "")) for k in (
            "total", "killed", "timeout", "survived", "equivalent", "other")),
            esc(_rate(overall))])
        parts += ["<h2>ML-fault mutants</h2>", table(
            ["operator", "total", "killed", "timeout", "survived", "equivalent", "other",
             "kill rate"], rows_ml, numeric=(1, 2, 3, 4, 5, 6, 7))]
    files: dict[str, str | bytes] = {}
    series = [*history, ("this run", None if score is None else float(score))]
    if len(series) > 1:
        png = _figure_png(lambda axes: _history_plot(axes, series))
        files[AUDIT_HISTORY_PNG] = png
        parts += ["<h2>Score over time</h2>", _img(png, "mutation score over time"),
                  table(["run", "score"], [[esc(label), esc("n/a" if s is None else f"{s:.2f}%")]
                                           for label, s in series])]
    md = ["## mlprop audit", "", f"**{verdict}**", ""]
    md += md_table(["file", "total", "killed", "survived", "score"], md_rows)
    if survivors:
        md += ["", f"{len(survivors)} undetected mutant(s): "
               + ", ".join(f"`{s['name']}`" for s in survivors[:20])]
    if ml:
        md += ["", f"ML-fault mutants: kill rate {_rate(ml.get('overall', {}))}"]
    if len(series) > 1:
        md += ["", "Score over time: " + " → ".join(
            "n/a" if s is None else f"{s:.1f}%" for _, s in series)]
    files.update({"results.json": json.dumps(report, indent=1) + "\n",
                  "summary.md": "\n".join(md) + "\n",
                  "report.html": page("mlprop audit", "".join(parts))})
    return files


def _rate(d: Mapping[str, Any]) -> str:
    rate = d.get("kill_rate")
    if rate is None:
        total = (d.get("total") or 0) - (d.get("equivalent") or 0)
        detected = (d.get("killed") or 0) + (d.get("timeout") or 0)
        rate = 100.0 * detected / total if total else None
    return "n/a" if rate is None else f"{float(rate):.1f}%"


def ml_kill_rate(report: Mapping[str, Any]) -> float | None:
    """The ML-mutant kill rate in percent (None without ML mutants)."""
    ml = report.get("ml_mutants")
    if not ml:
        return None
    text = _rate(ml.get("overall", {}))
    return None if text == "n/a" else float(text.rstrip("%"))


def _history_plot(axes, series: Sequence[tuple[str, float | None]]) -> None:
    points = [(i, s) for i, (_, s) in enumerate(series) if s is not None]
    axes.plot([i for i, _ in points], [s for _, s in points], marker="o")
    axes.set_xticks(range(len(series)), [label for label, _ in series], rotation=20,
                    fontsize=7)
    axes.set_ylabel("mutation score (%)")
    axes.set_ylim(max(0.0, min((s for _, s in points), default=0.0) - 5), 100.5)
    axes.grid(alpha=0.3)


# --------------------------------------------------------------------------- bench


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.split("::")[-1]).strip("_")


def batch_size(name: str) -> int | None:
    """The batch of a benchmark named ``test_bench_x[64]`` (None when not parametrized by
    a number)."""
    match = re.search(r"\[(\d+)\]$", name)
    return int(match.group(1)) if match else None


def bench_files(data: Mapping[str, Any]) -> dict[str, str | bytes]:
    """The comparison report's files: one PNG per benchmark (BASE's and HEAD's per-job
    times side by side) and the verdicts."""
    files: dict[str, str | bytes] = {}
    base, head = str(data.get("base", ""))[:12], str(data.get("head", ""))[:12]
    threshold = float(data.get("threshold", 0.1))
    parts = [f"<h1>mlprop bench compare</h1><p>BASE <code>{esc(base)}</code>, HEAD "
             f"<code>{esc(head)}</code>; {esc(data.get('rounds'))} jobs, statistic "
             f"{esc(data.get('statistic'))}, regression beyond {threshold * 100:g}% and the "
             "noise.</p>"]
    md = ["## mlprop bench compare", "", f"BASE `{base}` vs HEAD `{head}`", ""]
    md_rows, rows = [], []
    for c in data.get("comparisons", []):
        name = c["name"].split("::")[-1]
        png_name = f"bench-{_slug(c['name'])}.png"
        png = _figure_png(lambda axes, c=c: _bench_plot(axes, c))
        files[png_name] = png
        ratio = f"{c['ratio']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"
        rows.append([esc(name), badge(c["verdict"]), esc(ratio),
                     esc(f"{statistics.median(c['base']) * 1e3:.3f}"),
                     esc(f"{statistics.median(c['head']) * 1e3:.3f}"),
                     _img(png, f"{name}: BASE and HEAD")])
        md_rows.append([name, c["verdict"], ratio])
    parts.append(table(["benchmark", "verdict", "HEAD/BASE [95% interval]", "BASE ms",
                        "HEAD ms", "per-job times"], rows, numeric=(3, 4)))
    regressions = [c["name"].split("::")[-1] for c in data.get("comparisons", [])
                   if c["verdict"] == "regression"]
    verdict = (f"regression: {', '.join(regressions)}" if regressions else "no regression")
    parts.insert(1, f"<p><b>{esc(verdict)}</b></p>")
    md += [f"**{verdict}**", "", *md_table(["benchmark", "verdict", "HEAD/BASE [95%]"],
                                           md_rows)]
    files.update({"results.json": json.dumps(data, indent=1) + "\n",
                  "summary.md": "\n".join(md) + "\n",
                  "report.html": page("mlprop bench compare", "".join(parts))})
    return files


def _bench_plot(axes, c: Mapping[str, Any]) -> None:
    base = [v * 1e3 for v in c["base"]]
    head = [v * 1e3 for v in c["head"]]
    axes.boxplot([base, head], showfliers=False)
    for position, values in ((1, base), (2, head)):
        offsets = [position + (i - (len(values) - 1) / 2) * 0.04 for i in range(len(values))]
        axes.scatter(offsets, values, s=12, alpha=0.7, zorder=3)
    axes.set_xticks([1, 2], ["BASE", "HEAD"])
    axes.set_ylabel("ms per call")
    axes.set_title(f"{c['name'].split('::')[-1]}: {c['verdict']} (x{c['ratio']:.3f})",
                   fontsize=9)
    axes.grid(alpha=0.3, axis="y")
