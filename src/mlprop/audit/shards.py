"""The audit split over machines: ``mlprop audit --shard K/N`` and ``mlprop audit merge``.

A shard runs the K-th of N disjoint parts of the audit's work (mutmut mutants and ML mutants,
and with them the training-path re-test of that part's survivors) and writes a *shard
result*: the verdicts, per-mutant seconds, the tests that covered or killed each mutant, the
diffs the report shows, and a fingerprint of everything a verdict depends on. Merging the N
results gives the report, score and gate of one unsharded run.

Invariant: every machine computes the same partition from the same source tree (and the same
``--timings`` file, or none); the N parts are disjoint and together hold every mutant; merge
accepts only results with one fingerprint and one partition, no shard twice, and a merge
with a shard missing is reported as partial and never passes the gate.

Bug it prevents: a sharded audit that tests a mutant twice or never (two machines that
disagreed on the partition, a shard from another commit, a shard that died midway) and
still reports a passing score.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlprop.errors import MlpropError

FORMAT = "mlprop-audit-shard"
VERSION = 1
MUTMUT = "mutmut:"
ML = "ml:"


class ShardError(MlpropError, ValueError):
    """A shard option or result file is unusable; the message names the file and field."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> ``Shard(2, 3)``; anything else (``0/0``, ``4/3``, ``x``) is refused."""
        head, slash, tail = str(text).partition("/")
        try:
            index, count = int(head), int(tail)
        except ValueError:
            index = count = 0
        if not slash or count < 1 or not 1 <= index <= count:
            raise ShardError(f"--shard: expected K/N with 1 <= K <= N (e.g. 2/3), got "
                             f"{text!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def work_units(mutmut_names: Iterable[str], ml_ids: Iterable[str]) -> list[str]:
    """The audit's units of work, named so that mutmut and ML mutants never collide."""
    return sorted([MUTMUT + name for name in mutmut_names] + [ML + i for i in ml_ids])


#: A part may carry this much more than the mean cost before units move to the lightest.
TOLERANCE = 0.05


def home_shard(unit: str, count: int) -> int:
    """The part (0-based) a unit's name hashes to: the same on every machine and under any
    other change to the mutant list."""
    return int.from_bytes(hashlib.sha256(unit.encode()).digest()[:8], "big") % count


def partition(units: Sequence[str], count: int,
              seconds: Mapping[str, float] | None = None) -> list[list[str]]:
    """Split ``units`` into ``count`` disjoint parts of about equal cost, the same on every
    machine. Each unit starts in its :func:`home_shard`, so adding or removing a mutant moves
    no other one and each part's cached verdicts stay useful night after night. Then, while
    the costliest part is more than :data:`TOLERANCE` above the mean, the unit of it whose
    move best evens it with the cheapest part moves there. A unit's cost is its recorded
    seconds (a unit without a record costs the median of the recorded ones), or 1 when
    nothing is recorded (parts of about equal count)."""
    known = {u: float(s) for u, s in (seconds or {}).items() if s > 0}
    units = sorted(dict.fromkeys(units))
    recorded = [known[u] for u in units if u in known]
    default = statistics.median(recorded) if recorded else 1.0
    weight = {unit: known.get(unit, default) if recorded else 1.0 for unit in units}
    parts: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for unit in units:
        home = home_shard(unit, count)
        parts[home].append(unit)
        loads[home] += weight[unit]
    ceiling = (1.0 + TOLERANCE) * sum(loads) / count
    for _ in range(len(units)):
        heavy = max(range(count), key=lambda k: (loads[k], -k))
        light = min(range(count), key=lambda k: (loads[k], k))
        gap = loads[heavy] - loads[light]
        movable = [u for u in parts[heavy] if 0.0 < weight[u] < gap]
        if loads[heavy] <= ceiling or not movable:
            break
        unit = min(movable, key=lambda u: (abs(weight[u] - gap / 2), u))
        parts[heavy].remove(unit)
        parts[light].append(unit)
        loads[heavy] -= weight[unit]
        loads[light] += weight[unit]
    return [sorted(part) for part in parts]


def digest(value: Any) -> str:
    """A short hash of a JSON-able value (the partition, the timings used)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:24]


def timings_from(path: Path) -> dict[str, float]:
    """Per-unit seconds recorded by an earlier audit (its ``--json`` report, unsharded or
    merged, which keeps them under ``unit_seconds``). Raises :class:`ShardError` naming the
    file when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ShardError(f"--timings {path}: not readable as an audit JSON ({exc})") from None
    table = data.get("unit_seconds") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in table.items()):
        raise ShardError(f"--timings {path}: field 'unit_seconds': expected an object of "
                         "unit -> seconds (the --json of an earlier audit or merge)")
    return {k: float(v) for k, v in table.items()}


# --------------------------------------------------------------------------- result files


_TYPES = {"str": str, "int": int, "dict": dict, "list": list, "bool": bool, "num": float}


def _check(path: Path, field: str, value: Any, kind: str, *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return value
    if kind == "num":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, _TYPES[kind]) and not (kind == "int" and isinstance(value, bool))
    if not ok:
        shown = json.dumps(value)[:60] if _jsonable(value) else type(value).__name__
        raise ShardError(f"{path}: field {field!r}: expected {'null or ' if nullable else ''}"
                         f"{kind}, got {shown}")
    return value


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def load_result(path: Path) -> dict[str, Any]:
    """A shard result file, checked field by field. Raises :class:`ShardError` naming the
    file and the first field that is missing or of the wrong type (a truncated file, another
    tool's JSON, an older format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ShardError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ShardError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ShardError(f"{path}: not valid JSON, truncated or damaged ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ShardError(f"{path}: field 'format': expected {FORMAT!r} (a file written by "
                         f"mlprop audit --shard), got {got!r}")
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        raise ShardError(f"{path}: field 'version': expected {VERSION}, got "
                         f"{data.get('version')!r} (written by another mlprop version)")
    shard = _check(path, "shard", data.get("shard"), "dict")
    index = _check(path, "shard.index", shard.get("index"), "int")
    count = _check(path, "shard.count", shard.get("count"), "int")
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"{path}: field 'shard': expected 1 <= index <= count, got "
                         f"{index}/{count}")
    for field in ("fingerprint", "partition", "timings"):
        _check(path, field, data.get(field), "str")
    units = _check(path, "units", data.get("units"), "list")
    for i, unit in enumerate(units):
        _check(path, f"units[{i}]", unit, "str")
    for i, row in enumerate(_check(path, "mutmut", data.get("mutmut"), "list")):
        where = f"mutmut[{i}]"
        _check(path, where, row, "dict")
        for key in ("name", "path"):
            _check(path, f"{where}.{key}", row.get(key), "str")
        _check(path, f"{where}.exit_code", row.get("exit_code"), "int", nullable=True)
        _check(path, f"{where}.seconds", row.get("seconds"), "num", nullable=True)
        _check(path, f"{where}.diff", row.get("diff"), "str", nullable=True)
    ml = _check(path, "ml", data.get("ml"), "list", nullable=True)
    for i, row in enumerate(ml or []):
        _check(path, f"ml[{i}]", row, "dict")
        for key in ("id", "operator", "path", "function", "description", "status"):
            _check(path, f"ml[{i}].{key}", row.get(key), "str")
        for key in ("line", "order", "tests"):
            _check(path, f"ml[{i}].{key}", row.get(key), "int")
        _check(path, f"ml[{i}].seconds", row.get("seconds"), "num")
        for key in ("detail", "diff"):
            _check(path, f"ml[{i}].{key}", row.get(key), "str")
        for key in ("killed_by", "reason"):
            _check(path, f"ml[{i}].{key}", row.get(key), "str", nullable=True)
        for j, name in enumerate(_check(path, f"ml[{i}].would_catch", row.get("would_catch"),
                                        "list")):
            _check(path, f"ml[{i}].would_catch[{j}]", name, "str")
    covering = _check(path, "covering", data.get("covering"), "dict")
    for key, tests in covering.items():
        for j, test in enumerate(_check(path, f"covering.{key}", tests, "list")):
            _check(path, f"covering.{key}[{j}]", test, "str")
    equivalents = _check(path, "equivalents", data.get("equivalents"), "dict")
    for table in ("mutmut", "ml"):
        for name, reason in _check(path, f"equivalents.{table}", equivalents.get(table),
                                   "dict").items():
            _check(path, f"equivalents.{table}.{name}", reason, "str")
    options = _check(path, "options", data.get("options"), "dict")
    for key in ("ml_mutants", "suite"):
        _check(path, f"options.{key}", options.get(key), "bool")
    timing = _check(path, "timing", data.get("timing"), "dict")
    _check(path, "timing.wall_seconds", timing.get("wall_seconds"), "num")
    for key in ("mutmut_seconds", "ml_seconds", "mutants_tested"):
        _check(path, f"timing.{key}", timing.get(key), "num", nullable=True)
    retest = _check(path, "timing.training_path_retest", timing.get("training_path_retest"),
                    "dict", nullable=True)
    for key in ("survivors", "on_training_path", "killed", "seconds"):
        _check(path, f"timing.training_path_retest.{key}", (retest or {}).get(key), "num",
               nullable=True)
    named = {MUTMUT + row["name"] for row in data["mutmut"]} | {
        ML + row["id"] for row in (ml or [])}
    if named != set(units):
        raise ShardError(f"{path}: field 'units': {len(set(units) ^ named)} unit(s) without "
                         "a verdict or verdicts for units not assigned (an incomplete file)")
    return data


@dataclass(frozen=True)
class Merged:
    """What the shard results say together."""

    results: list[tuple[Path, dict[str, Any]]]  # in shard order
    count: int
    missing: list[int]  # shard indices (1-based) with no result

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def combine(results: Sequence[tuple[Path, dict[str, Any]]]) -> Merged:
    """Check that loaded shard results belong to one run and do not overlap. Raises
    :class:`ShardError` naming the files when they differ in fingerprint, shard count,
    partition or options, or when a shard (or a unit) appears twice."""
    if not results:
        raise ShardError("audit merge: no shard result given")
    first_path, first = results[0]
    for path, data in results[1:]:
        for field, what in (("fingerprint", "sources, tests, configuration, equivalents or "
                                             "versions"),
                            ("timings", "--timings files"), ("options", "options")):
            if data[field] != first[field]:
                raise ShardError(
                    f"{path}: field {field!r} differs from {first_path}: shards of different "
                    f"{what} cannot be merged (run every shard from the same commit)")
        if data["shard"]["count"] != first["shard"]["count"]:
            raise ShardError(f"{path}: field 'shard.count': {data['shard']['count']} shards, "
                             f"but {first_path} is one of {first['shard']['count']}")
        if data["partition"] != first["partition"]:
            raise ShardError(f"{path}: field 'partition' differs from {first_path}: the "
                             "shards split the work differently (a different mutant list)")
    by_index: dict[int, tuple[Path, dict[str, Any]]] = {}
    owner: dict[str, Path] = {}
    for path, data in results:
        index = data["shard"]["index"]
        if index in by_index:
            raise ShardError(f"audit merge: shard {index}/{data['shard']['count']} given "
                             f"twice ({by_index[index][0]} and {path}): overlapping results")
        by_index[index] = (path, data)
        for unit in data["units"]:
            if unit in owner:
                raise ShardError(f"audit merge: {unit} is in both {owner[unit]} and {path}: "
                                 "overlapping results")
            owner[unit] = path
    count = first["shard"]["count"]
    return Merged(results=[by_index[k] for k in sorted(by_index)], count=count,
                  missing=[k for k in range(1, count + 1) if k not in by_index])
