"""Read mutmut's results, apply the reviewed equivalent-mutant list, score, and render.

mutmut 3 keeps one JSON file per source file, ``mutants/<path>.meta``, whose
``exit_code_by_key`` maps each mutant (``mlprop.digits.train.x_train__mutmut_7``) to the
exit code of its test run. :func:`read_mutmut_results` turns those into
:class:`MutantOutcome` values; :func:`summarize` counts them overall and per module.

The score is ``detected / scored`` in percent, where detected = killed + timeout (a mutant
that makes the tests hang is caught, as in mutmut's own badge), and scored = every mutant
except skipped ones and reviewed equivalents. Survivors, "no tests", suspicious results,
segfaults and mutants not checked yet all count against the score.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlprop.errors import MlpropError

#: mutmut 3.8's exit-code -> status table (mutmut.stats.status_by_exit_code); anything
#: else is "suspicious".
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
    35: "suspicious", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
    255: "timeout", 37: "caught by type check", -11: "segfault", -9: "segfault",
    2: "interrupted", None: "not checked",
}
DETECTED = frozenset({"killed", "timeout", "caught by type check"})
UNDETECTED = frozenset({"survived", "no tests", "suspicious", "segfault", "interrupted",
                        "not checked"})
COUNTED = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault",
           "not checked", "skipped", "equivalent", "caught by type check", "interrupted")


def status_of(exit_code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


@dataclass(frozen=True)
class MutantOutcome:
    """One mutmut mutant and what became of it."""

    name: str           # mlprop.digits.train.x_train__mutmut_7
    path: str           # src/mlprop/digits/train.py
    module: str         # mlprop.digits.train
    status: str
    exit_code: int | None = None
    seconds: float | None = None
    reason: str | None = None  # why it is equivalent (status "equivalent")

    @property
    def function(self) -> str:
        """``x_train`` / ``xǁDigitCNNǁforward``: the mangled function name."""
        return self.name.rpartition(".")[2].partition("__mutmut_")[0]


@dataclass(frozen=True)
class Equivalents:
    """The reviewed list: mutant name -> one-line reason, for mutmut and ML mutants."""

    mutmut: Mapping[str, str] = field(default_factory=dict)
    ml: Mapping[str, str] = field(default_factory=dict)


class EquivalentsError(MlpropError, ValueError):
    """The equivalent-mutant list is malformed; the message names the file and the entry."""


def load_equivalents(path: Path | None) -> Equivalents:
    """Parse the TOML list (``[mutmut]`` and ``[ml]`` tables of ``name = "reason"``).

    Invariant: returns the two tables or raises :class:`EquivalentsError` naming the file
    and the table or entry at fault (bad UTF-8, bad TOML, a table that is not a table, a
    reason that is not one line of text); no other exception escapes.
    """
    if path is None or not path.is_file():
        return Equivalents()
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise EquivalentsError(f"{path}: unreadable ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise EquivalentsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise EquivalentsError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # deeply nested arrays or inline tables
        raise EquivalentsError(f"{path}: not valid TOML (nested too deeply)") from None
    unknown = set(data) - {"mutmut", "ml"}
    if unknown:
        raise EquivalentsError(f"{path}: unknown tables {sorted(unknown)} (expected [mutmut] "
                               "and [ml])")
    tables = {}
    for table in ("mutmut", "ml"):
        entries = data.get(table, {})
        if not isinstance(entries, dict):
            raise EquivalentsError(f"{path}: [{table}] must be a table of name = \"reason\", "
                                   f"got {type(entries).__name__}")
        for name, reason in entries.items():
            if not isinstance(reason, str) or not reason.strip() or "\n" in reason.strip():
                raise EquivalentsError(f"{path}: [{table}] {name!r} needs a one-line reason, "
                                       f"got {reason!r}")
        tables[table] = {name: reason.strip() for name, reason in entries.items()}
    return Equivalents(**tables)


def module_name(path: str | Path) -> str:
    """``src/mlprop/digits/train.py`` -> ``mlprop.digits.train`` (``src.`` dropped)."""
    parts = list(Path(path).with_suffix("").parts)
    if parts and parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def read_meta(meta_path: Path, source_path: str) -> list[MutantOutcome]:
    """The outcomes stored in one ``.meta`` file (``source_path`` is the file it mutates)."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    codes = meta.get("exit_code_by_key")
    if not isinstance(codes, dict):
        raise ValueError(f"{meta_path}: no exit_code_by_key mapping (not a mutmut 3 .meta)")
    durations = meta.get("durations_by_key") or {}
    module = module_name(source_path)
    return [MutantOutcome(name=name, path=source_path, module=module, status=status_of(code),
                          exit_code=code, seconds=durations.get(name))
            for name, code in sorted(codes.items(), key=lambda kv: natural_order(kv[0]))]


def natural_order(name: str) -> tuple[str, int]:
    """Sort key of a mutmut mutant name: ``x_f__mutmut_2`` before ``x_f__mutmut_10``."""
    head, _, number = name.rpartition("__mutmut_")
    return (head, int(number)) if number.isdigit() else (name, 0)


def read_mutmut_results(root: Path, source_paths: Iterable[str]) -> list[MutantOutcome]:
    """Every outcome under ``root/mutants`` for the given source files (relative paths)."""
    outcomes: list[MutantOutcome] = []
    for source in sorted(source_paths):
        meta = root / "mutants" / f"{source}.meta"
        if meta.is_file():
            outcomes.extend(read_meta(meta, source))
    return outcomes


def apply_equivalents(outcomes: Sequence[MutantOutcome], reviewed: Mapping[str, str],
                      ) -> tuple[list[MutantOutcome], list[str]]:
    """Mark reviewed survivors "equivalent"; return them and the stale entries.

    An entry is stale when it names no mutant, or a mutant the tests now detect (mutmut
    numbers mutants per function, so an edit can move a number onto another mutant)."""
    by_name = {o.name: o for o in outcomes}
    stale = sorted(name for name in reviewed if name not in by_name)
    marked = []
    for outcome in outcomes:
        reason = reviewed.get(outcome.name)
        if reason is None:
            marked.append(outcome)
        elif outcome.status in DETECTED:
            stale.append(outcome.name)
            marked.append(outcome)
        elif outcome.status in {"survived", "no tests", "suspicious"}:
            marked.append(MutantOutcome(outcome.name, outcome.path, outcome.module,
                                        "equivalent", outcome.exit_code, outcome.seconds,
                                        reason))
        else:
            marked.append(outcome)
    return marked, sorted(stale)


@dataclass(frozen=True)
class Tally:
    """Counts by status and the score of a group of mutants."""

    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def detected(self) -> int:
        return sum(self.counts.get(s, 0) for s in DETECTED)

    @property
    def scored(self) -> int:
        return self.total - self.counts.get("skipped", 0) - self.counts.get("equivalent", 0)

    @property
    def score(self) -> float | None:
        """Percent detected among scored mutants; None when nothing is scored."""
        return 100.0 * self.detected / self.scored if self.scored else None

    @property
    def raw_score(self) -> float | None:
        """Percent detected counting reviewed equivalents as undetected (mutmut's view)."""
        judged = self.total - self.counts.get("skipped", 0)
        return 100.0 * self.detected / judged if judged else None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"total": self.total}
        data.update({s.replace(" ", "_"): self.counts.get(s, 0) for s in COUNTED})
        data["score"] = None if self.score is None else round(self.score, 2)
        data["raw_score"] = None if self.raw_score is None else round(self.raw_score, 2)
        return data


def tally(statuses: Iterable[str]) -> Tally:
    return Tally(dict(Counter(statuses)))


def summarize(outcomes: Sequence[MutantOutcome]) -> tuple[Tally, dict[str, Tally]]:
    """The overall tally and one per module (sorted by module name)."""
    modules: dict[str, list[str]] = {}
    for outcome in outcomes:
        modules.setdefault(outcome.module, []).append(outcome.status)
    return (tally(o.status for o in outcomes),
            {module: tally(statuses) for module, statuses in sorted(modules.items())})


def format_score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.1f}%"


# --------------------------------------------------------------------------- rendering


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return [line(header), *(line(r) for r in rows)]


MUTMUT_COLUMNS = ("killed", "timeout", "survived", "no tests", "equivalent", "other")


def _mutmut_row(name: str, t: Tally) -> list[str]:
    other = t.total - sum(t.counts.get(s, 0) for s in MUTMUT_COLUMNS[:-1]) - t.counts.get(
        "skipped", 0)
    return [name, str(t.total), *(str(t.counts.get(s, 0)) for s in MUTMUT_COLUMNS[:-1]),
            str(other), format_score(t.score)]


ML_COLUMNS = ("killed", "timeout", "survived", "equivalent", "other")
ML_ACCOUNTED = frozenset({"killed", "timeout", "equivalent"})
"""ML-mutant statuses that need no action: any other one fails the audit."""


def _ml_row(name: str, d: Mapping[str, Any]) -> list[str]:
    return [name, str(d["total"]), *(str(d[s]) for s in ML_COLUMNS),
            format_score(d["kill_rate"])]


def format_text(report: Mapping[str, Any], *, diffs: bool = True) -> str:
    """The human summary printed by ``mlprop audit``."""
    lines: list[str] = []
    mut = report.get("mutmut")
    if mut:
        lines.append("mutmut: score by module (detected = killed + timeout)")
        rows = [_mutmut_row(m, Tally(_counts(d))) for m, d in mut["modules"].items()]
        rows.append(_mutmut_row("TOTAL", Tally(_counts(mut["overall"]))))
        lines += ["  " + r for r in _table(rows, ["module", "total", *MUTMUT_COLUMNS,
                                                  "score"])]
        raw = mut["overall"].get("raw_score")
        if raw is not None:
            lines.append(f"  (counting the {mut['overall'].get('equivalent', 0)} reviewed "
                         f"equivalent mutants as undetected: {format_score(raw)})")
        survivors = mut.get("survivors", [])
        if survivors:
            lines.append("")
            lines.append(f"{len(survivors)} undetected mutant(s):")
            for s in survivors:
                lines.append(f"  {s['name']}: {s['status']}")
                if diffs and s.get("diff"):
                    lines += ["      " + d for d in s["diff"].splitlines()[2:]]
        if mut.get("stale_equivalents"):
            lines.append("")
            lines.append("stale entries in the equivalent-mutant list (no such mutant, or it "
                         "is detected now): " + ", ".join(mut["stale_equivalents"]))
    ml = report.get("ml_mutants")
    if ml:
        lines.append("")
        lines.append("ML-fault mutants by operator")
        rows = [_ml_row(op, d) for op, d in [*ml["by_operator"].items(),
                                             ("TOTAL", ml["overall"])]]
        lines += ["  " + r for r in _table(rows, ["operator", "total", *ML_COLUMNS,
                                                  "kill rate"])]
        undetected = [m for m in ml["mutants"] if m["status"] not in ML_ACCOUNTED]
        if undetected:
            lines.append("")
            lines.append(f"{len(undetected)} ML mutant(s) not killed:")
            for m in undetected:
                detail = f" {m['detail']}" if m.get("detail") else ""
                lines.append(f"  {m['id']}: {m['status']} ({m['description']}, "
                             f"{m['path']}:{m['line']}){detail}")
                if m.get("would_catch"):
                    lines.append("      " + would_catch_line(m["would_catch"]))
                if diffs and m.get("diff"):
                    lines += ["      " + d for d in m["diff"].splitlines()[2:]]
        if ml.get("stale_equivalents"):
            lines.append("stale [ml] entries in the equivalent-mutant list: "
                         + ", ".join(ml["stale_equivalents"]))
    timing = report.get("timing", {})
    if timing:
        lines.append("")
        parts = [f"wall {timing['wall_seconds']:.0f} s"]
        if timing.get("mutmut_seconds") is not None:
            parts.append(f"mutmut {timing['mutmut_seconds']:.0f} s "
                         f"({timing.get('mutants_tested', 0)} mutants tested"
                         + (f", {timing['mutants_per_minute']:.0f}/min"
                            if timing.get("mutants_per_minute") else "") + ")")
        if timing.get("ml_seconds") is not None:
            parts.append(f"ML mutants {timing['ml_seconds']:.0f} s")
        retest = timing.get("training_path_retest") or {}
        if retest.get("on_training_path"):
            parts.append(f"training-path re-test {retest['seconds']:.0f} s "
                         f"({retest['killed']} of {retest['on_training_path']} "
                         "survivors killed" + (", reused" if retest.get("reused") else "")
                         + ")")
        lines.append("time: " + ", ".join(parts))
    verdict = report.get("verdict")
    if verdict:
        lines.append(verdict)
    return "\n".join(lines)


def would_catch_line(properties: Sequence[str], *, markdown: bool = False) -> str:
    """What to do about an ML mutant that survived a run without mlprop's properties."""
    names = ", ".join(f"`{p}`" if markdown else p for p in properties)
    return (f"mlprop's suite would catch this kind of fault ({names}): set [tool.mlprop] "
            "suite = true (or mlprop audit --suite) to run it on the mutants")


def _counts(d: Mapping[str, Any]) -> dict[str, int]:
    return {s: int(d.get(s.replace(" ", "_"), 0)) for s in COUNTED}


def format_markdown(report: Mapping[str, Any]) -> str:
    """A short Markdown report for CI artifacts: tables, then every survivor's diff."""
    out = ["# mlprop mutation audit", ""]
    if report.get("verdict"):
        out += [f"**{report['verdict']}**", ""]
    mut = report.get("mutmut")
    if mut:
        out += ["## mutmut", "", "| module | total | " + " | ".join(MUTMUT_COLUMNS)
                + " | score |", "|---" * (len(MUTMUT_COLUMNS) + 3) + "|"]
        for name, d in [*mut["modules"].items(), ("**total**", mut["overall"])]:
            out.append("| " + " | ".join(_mutmut_row(name, Tally(_counts(d)))) + " |")
        out.append("")
        for s in mut.get("survivors", []):
            out += [f"### `{s['name']}` ({s['status']})", "", "```diff", s.get("diff") or "",
                    "```", ""]
        if mut.get("equivalent"):
            out += ["### Reviewed equivalent mutants", ""]
            out += [f"- `{e['name']}`: {e['reason']}" for e in mut["equivalent"]]
            out.append("")
    ml = report.get("ml_mutants")
    if ml:
        out += ["## ML-fault mutants", "", "| operator | total | " + " | ".join(ML_COLUMNS)
                + " | kill rate |", "|---" * (len(ML_COLUMNS) + 3) + "|"]
        for op, d in [*ml["by_operator"].items(), ("**total**", ml["overall"])]:
            out.append("| " + " | ".join(_ml_row(op, d)) + " |")
        out.append("")
        for m in ml["mutants"]:
            if m["status"] in {"killed", "timeout"}:
                continue
            out += [f"### `{m['id']}` ({m['status']})", "", m["description"]
                    + (f" — {m['reason']}" if m.get("reason") else ""), ""]
            if m.get("would_catch"):
                out += [would_catch_line(m["would_catch"], markdown=True), ""]
            out += ["```diff", m.get("diff") or "", "```", ""]
    timing = report.get("timing")
    if timing:
        out += ["## Time", "", "```", json.dumps(timing, indent=2), "```", ""]
    return "\n".join(out)
