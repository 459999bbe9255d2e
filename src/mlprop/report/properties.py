"""The property report: results of one suite run as ``results.json``, ``report.html`` and
``summary.md``.

:func:`build_results` turns what :mod:`mlprop.report.plugin` recorded into one JSON-ready
dict (the format tools such as ``mlprop check --mlflow`` read back); :func:`render_html`
and :func:`render_markdown` draw it; :func:`write_report` writes all three atomically and
appends the summary to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlprop.config import COMPONENTS
from mlprop.docs_links import property_url
from mlprop.report.environment import git_commit, versions
from mlprop.report.html import badge, esc, md_table, page, pre, table
from mlprop.report.output import append_step_summary, write_report_files

__all__ = ["STATUSES", "build_results", "render_html", "render_markdown", "write_report"]

STATUSES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
FORMAT = 1


def build_results(*, tests: Sequence[Mapping[str, Any]], session: Any, seconds: float,
                  exitstatus: int, deselected: int = 0,
                  target_name: str | None = None) -> dict[str, Any]:
    """The run as a dict: target, versions, profile, counts, per-component properties,
    what was not run and why, and every failure."""
    properties = [dict(t) for t in tests if t.get("property")]
    others = [t for t in tests if not t.get("property")]
    by_component: dict[str, list[dict[str, Any]]] = {c: [] for c in COMPONENTS}
    for entry in properties:
        entry["status"] = entry.get("status") or "error"
        by_component.setdefault(entry["component"], []).append(entry)
    counts = Counter(t["status"] for t in properties)
    chosen = tuple(getattr(session, "components", COMPONENTS) or COMPONENTS)
    not_run = []
    for component in COMPONENTS:
        if component not in chosen:
            not_run.append({"part": f"component {component}",
                            "why": "not selected (--mlprop-components or [tool.mlprop] "
                                   "components)"})
        elif not by_component.get(component):
            not_run.append({"part": f"component {component}",
                            "why": "no property of it ran (a narrower path, -k or -m)"})
    for field, names in (getattr(session, "not_checked", None) or {}).items():
        unique = list(dict.fromkeys(names))
        not_run.append({"part": ", ".join(unique),
                        "why": f"the target has no {field} (set Target.{field} to check "
                               "them)"})
    for name, why in (getattr(session, "undecided", None) or {}).items():
        not_run.append({"part": name, "why": f"could not decide on this target: {why}"})
    shard = getattr(session, "shard", None)
    if shard:
        not_run.append({"part": "properties of the other shards",
                        "why": f"this run is shard {shard[0]}/{shard[1]}"})
    if deselected:
        not_run.append({"part": f"{deselected} deselected test(s)",
                        "why": "deselected (-k, -m, components or shard)"})
    return {
        "format": FORMAT,
        "kind": "check",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "target": {"spec": getattr(session, "spec", None),
                   "source": getattr(session, "source", None), "name": target_name},
        "profile": getattr(session, "profile", None),
        "profile_source": getattr(session, "profile_source", None),
        "versions": versions(),
        "git_commit": git_commit(),
        "seconds": round(seconds, 2),
        "exitstatus": exitstatus,
        "counts": {status: counts.get(status, 0) for status in STATUSES},
        "total": len(properties),
        "examples": sum(int(t.get("examples", 0)) for t in properties),
        "components": {c: v for c, v in by_component.items() if v or c in COMPONENTS},
        "not_run": not_run,
        "unmatched_expected_failures": list(getattr(session, "unmatched", []) or []),
        "other_tests": dict(Counter(t.get("status") or "error" for t in others)),
        "failures": [t for t in properties if t.get("failure")],
    }


def _verdict(results: Mapping[str, Any]) -> str:
    counts = results["counts"]
    bad = counts["failed"] + counts["error"] + counts["xpassed"]
    if not results["total"]:
        return "no property ran"
    if bad:
        return f"{bad} of {results['total']} properties FAILED"
    return f"all {counts['passed']} properties hold" + (
        f" ({counts['skipped']} skipped, {counts['xfailed']} declared failures)"
        if counts["skipped"] or counts["xfailed"] else "")


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def _component_counts(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = Counter(e["status"] for e in entries)
    return {"passed": counts.get("passed", 0),
            "failed": counts.get("failed", 0) + counts.get("error", 0)
            + counts.get("xpassed", 0),
            "skipped": counts.get("skipped", 0) + counts.get("xfailed", 0),
            "examples": sum(int(e.get("examples", 0)) for e in entries),
            "seconds": sum(float(e.get("seconds", 0.0)) for e in entries)}


def _anchor(nodeid: str) -> str:
    return "f-" + "".join(ch if ch.isalnum() else "-" for ch in nodeid)[-120:]


def _reference_link(entry: Mapping[str, Any]) -> str:
    """The property's name linked to its entry in the documentation's reference."""
    url = property_url(entry.get("name") or entry["test"])
    return f'<a href="{esc(url)}">{esc(entry["test"])}</a>'


def render_html(results: Mapping[str, Any]) -> str:
    target = results["target"]
    v = results["versions"]
    title = f"mlprop check: {target.get('name') or target.get('spec')}"
    parts = [f"<h1>{esc(title)}</h1>",
             f"<p><b>{esc(_verdict(results))}</b> in {esc(_seconds(results['seconds']))}; "
             f"{results['examples']} examples tried.</p>",
             table(["", ""], [
                 ["target", f"<code>{esc(target.get('spec'))}</code> (from "
                            f"{esc(target.get('source'))})"],
                 ["profile", f"{esc(results.get('profile'))} (from "
                             f"{esc(results.get('profile_source'))})"],
                 ["versions", esc(", ".join(f"{k} {val}" for k, val in v.items()))],
                 ["git commit", esc(results.get("git_commit") or "not a git checkout")],
                 ["created", esc(results.get("created"))]])]
    for component, entries in results["components"].items():
        if not entries:
            continue
        c = _component_counts(entries)
        parts.append(f"<h2>{esc(component)}</h2><p>{c['passed']} passed, {c['failed']} "
                     f"failed, {c['skipped']} skipped; {c['examples']} examples, "
                     f"{esc(_seconds(c['seconds']))}</p>")
        rows = []
        for e in entries:
            name = _reference_link(e)
            if e.get("failure"):
                name += f' (<a href="#{_anchor(e["nodeid"])}">failure</a>)'
            rows.append([name, badge(e["status"]), esc(e.get("examples", "")),
                         esc(f"{float(e.get('seconds', 0.0)):.2f}"), esc(e.get("reason", ""))])
        parts.append(table(["property", "status", "examples", "seconds", "note"], rows,
                           numeric=(2, 3)))
    if results["not_run"]:
        parts.append("<h2>Not run</h2>" + table(
            ["what", "why"], [[esc(n["part"]), esc(n["why"])] for n in results["not_run"]]))
    if results.get("unmatched_expected_failures"):
        parts.append("<p>expected_failed_checks that match no property: "
                     + esc(", ".join(results["unmatched_expected_failures"])) + "</p>")
    if results["failures"]:
        parts.append("<h2>Failures</h2>")
        for entry in results["failures"]:
            parts.append(_failure_html(entry))
    return page(title, "".join(parts))


def _failure_html(entry: Mapping[str, Any]) -> str:
    f = entry["failure"]
    out = [f'<div class="failure" id="{_anchor(entry["nodeid"])}">',
           f"<h3>{_reference_link(entry)} <small>({esc(entry['component'])})</small></h3>"]
    if f.get("doc"):
        out.append("<h4>What it checks</h4>" + pre(f["doc"]))
    out.append(f"<h4>Assertion ({esc(f['exception'])})</h4>" + pre(f["message"]))
    if f.get("distinct_failures", 1) > 1:
        out.append(f"<p>Hypothesis found {f['distinct_failures']} distinct failures; the "
                   "first is drawn.</p>")
    figures = [fig for fig in f.get("figures", [])]
    if figures:
        out.append("<h4>Falsifying example (shrunk)</h4><div>")
        for fig in figures:
            img = f'<img alt="{esc(fig["title"])}" src="{fig["uri"]}">' if fig["uri"] else ""
            out.append(f"<figure>{img}<figcaption><b>{esc(fig['title'])}</b><br>"
                       f"{esc(fig.get('caption', ''))}</figcaption></figure>")
        out.append("</div>")
    if f.get("example"):
        out.append(table(["input", "value"], [[esc(k), f"<code>{esc(val)}</code>"]
                                             for k, val in f["example"].items()]))
    replay = f["replay"]
    out.append("<h4>Replay</h4>" + pre(replay))
    if f.get("blob"):
        out.append("<p>or decorate the property with (Hypothesis replays exactly this "
                   "example):</p>" + pre(f["blob"]))
    if f.get("likely_causes"):
        out.append("<h4>Likely causes (faults from the catalogue this property catches)</h4>"
                   "<ul>" + "".join(f"<li><code>{esc(c['name'])}</code> ({esc(c['component'])}"
                                    f"): {esc(c['description'])}</li>"
                                    for c in f["likely_causes"]) + "</ul>")
    if f.get("notes"):
        out.append("<details><summary>Hypothesis and mlprop notes</summary>"
                   + pre("\n".join(f["notes"])) + "</details>")
    out.append("</div>")
    return "".join(out)


def render_markdown(results: Mapping[str, Any]) -> str:
    target = results["target"]
    v = results["versions"]
    lines = [f"## mlprop check: {target.get('name') or target.get('spec')}", "",
             f"**{_verdict(results)}** in {_seconds(results['seconds'])}; "
             f"{results['examples']} examples tried. Target `{target.get('spec')}`, profile "
             f"`{results.get('profile')}`; mlprop {v.get('mlprop')}, torch {v.get('torch')}, "
             f"hypothesis {v.get('hypothesis')}.", ""]
    rows = []
    for component, entries in results["components"].items():
        if entries:
            c = _component_counts(entries)
            rows.append([component, c["passed"], c["failed"], c["skipped"], c["examples"],
                         f"{c['seconds']:.1f}"])
    lines += md_table(["component", "passed", "failed", "skipped", "examples", "seconds"],
                      rows)
    if results["failures"]:
        lines += ["", "### Failures", ""]
        for entry in results["failures"]:
            f = entry["failure"]
            first = f["message"].splitlines()[0] if f["message"] else f["exception"]
            causes = ", ".join(f"`{c['name']}`" for c in f.get("likely_causes", []))
            url = property_url(entry.get("name") or entry["test"])
            lines.append(f"- **[{entry['test']}]({url})** ({entry['component']}): {first}")
            lines.append(f"  - replay: `{f['replay']}`")
            if f.get("blob"):
                lines.append(f"  - `{f['blob']}`")
            if causes:
                lines.append(f"  - likely causes: {causes}")
    if results["not_run"]:
        lines += ["", "### Not run", ""]
        lines += [f"- {n['part']}: {n['why']}" for n in results["not_run"]]
    return "\n".join(lines) + "\n"


def write_report(directory: Path, results: Mapping[str, Any]) -> list[Path]:
    """Write ``results.json``, ``summary.md`` and ``report.html`` (last) into
    ``directory``; append the summary to ``$GITHUB_STEP_SUMMARY`` when set."""
    summary = render_markdown(results)
    written = write_report_files(Path(directory), {
        "results.json": json.dumps(_without_pixels(results), indent=1, default=str) + "\n",
        "summary.md": summary,
        "report.html": render_html(results),
    })
    append_step_summary(summary)
    return written


def _without_pixels(results: Mapping[str, Any]) -> dict[str, Any]:
    """``results`` without the figures' inlined PNGs (they live in report.html)."""
    def strip(entry: Mapping[str, Any]) -> Mapping[str, Any]:
        if not entry.get("failure"):
            return entry
        figures = [{k: v for k, v in fig.items() if k != "uri"}
                   for fig in entry["failure"].get("figures", [])]
        return {**entry, "failure": {**entry["failure"], "figures": figures}}

    return {**results, "failures": [strip(e) for e in results["failures"]],
            "components": {c: [strip(e) for e in entries]
                           for c, entries in results["components"].items()}}
