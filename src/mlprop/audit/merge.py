"""``mlprop audit merge``: shard results -> the report one unsharded audit would give.

Invariant: for results that :func:`mlprop.audit.shards.combine` accepts, the report's
verdicts, score, equivalents applied, stale entries, ML tally and gate are those of one
unsharded run of the same tree (the equivalent list is applied once, to all verdicts, and
mutants come in the unsharded report's order); only ``timing`` differs, and it keeps every
shard's. A merge with shards missing is marked partial and never passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlprop.audit import report as rep
from mlprop.audit.mutation import MLOutcome, apply_ml_equivalents, build_report
from mlprop.audit.shards import Merged, combine, load_result


def load(paths: Sequence[Path]) -> Merged:
    """Load and combine shard result files (:class:`~mlprop.audit.shards.ShardError` naming
    the file and field on any problem)."""
    return combine([(Path(path), load_result(Path(path))) for path in paths])


def _timing(merged: Merged) -> dict[str, Any]:
    shards = [{"shard": data["shard"]["index"], **data["timing"]}
              for _, data in merged.results]

    def total(key: str) -> float | None:
        values = [t.get(key) for t in shards if isinstance(t.get(key), int | float)]
        return round(sum(values), 1) if values else None

    retest = [t.get("training_path_retest") or {} for t in shards]
    return {
        "wall_seconds": max((t.get("wall_seconds") or 0.0) for t in shards),
        "shard_seconds_total": total("wall_seconds"),
        "mutmut_seconds": total("mutmut_seconds"),
        "mutants_tested": int(total("mutants_tested") or 0),
        "ml_seconds": total("ml_seconds"),
        "training_path_retest": {key: sum(r.get(key) or 0 for r in retest)
                                 for key in ("survivors", "on_training_path", "killed",
                                             "seconds")},
        "shards": shards,
    }


def merge_report(merged: Merged, fail_under: float | None,
                 ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The merged report and the covering-test map (mangled function -> tests) the HTML
    report shows."""
    first = merged.results[0][1]
    equivalents = rep.Equivalents(mutmut=dict(first["equivalents"]["mutmut"]),
                                  ml=dict(first["equivalents"]["ml"]))
    rows = [row for _, data in merged.results for row in data["mutmut"]]
    rows.sort(key=lambda row: (row["path"], rep.natural_order(row["name"])))
    raw = [rep.MutantOutcome(name=row["name"], path=row["path"],
                             module=rep.module_name(row["path"]),
                             status=rep.status_of(row["exit_code"]),
                             exit_code=row["exit_code"], seconds=row["seconds"])
           for row in rows]
    outcomes, stale = rep.apply_equivalents(raw, equivalents.mutmut)
    ml = None
    if first["options"]["ml_mutants"]:
        ml_rows = sorted((row for _, data in merged.results for row in data["ml"] or []),
                         key=lambda row: row["order"])
        known = MLOutcome.__dataclass_fields__
        raw_ml = [MLOutcome(**{k: v for k, v in row.items() if k in known}) for row in ml_rows]
        ml_outcomes, ml_stale = apply_ml_equivalents(raw_ml, equivalents.ml)
        ml = (ml_outcomes, ml_stale, True)
    diffs = {row["name"]: row["diff"] for row in rows if row["diff"] is not None}
    missing = [f"{k}/{merged.count}" for k in merged.missing]
    report = build_report(Path("."), outcomes, stale, ml, _timing(merged), fail_under,
                          equivalents, diffs=diffs, missing_shards=missing)
    covering: dict[str, list[str]] = {}
    for _, data in merged.results:
        covering.update(data["covering"])
    return report, covering
