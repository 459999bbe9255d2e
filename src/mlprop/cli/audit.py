"""``mlprop audit``: the mutation audit with a score gate (see :mod:`mlprop.audit.mutation`).

Exit codes: 0 the audit passed, 1 the score is under ``--fail-under`` or an ML mutant is
neither killed nor listed as equivalent, 2 the audit could not run (usage, configuration,
mutmut missing or failing).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlprop.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError, positive_int


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"expected a percentage in [0, 100], got {text}")
    return value


def _add_report_options(parser: argparse.ArgumentParser, *, keep_earlier: bool = False,
                        ) -> None:
    """The options of what an audit (or a merge of shards) reports and gates. With
    ``keep_earlier`` (the ``merge`` subcommand) an option left out keeps the value given
    before ``merge`` (argparse would otherwise reset it to its default: a gate given as
    ``mlprop audit --fail-under 90 merge ...`` would be dropped silently)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if keep_earlier else value

    parser.add_argument("--fail-under", type=_percent, default=default(None), metavar="PCT",
                        help="exit 1 if the mutmut score is under PCT percent")
    parser.add_argument("--json", type=Path, metavar="FILE", default=default(None),
                        help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", default=default(None),
                        help="write a short Markdown report (for CI artifacts and job "
                             "summaries)")
    parser.add_argument("--report", type=Path, default=default(None), metavar="DIR",
                        help="write report.html (score per file, undetected mutants with "
                             "their diff and covering tests, ML mutants, score over time), "
                             "summary.md and results.json to DIR")
    parser.add_argument("--history", type=Path, nargs="+", default=default([]),
                        metavar="JSON", help="earlier audit JSON files (oldest first): the "
                                             "report plots the score over time")
    parser.add_argument("--force", action="store_true", default=default(False),
                        help="let --report overwrite a report already in DIR")
    parser.add_argument("--mlflow", action="store_true", default=default(None),
                        help="log the audit to MLflow (needs the mlprop[mlflow] extra)")
    parser.add_argument("--root", type=Path, default=default(Path.cwd()),
                        help=argparse.SUPPRESS)


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser(
        "audit", help="mutation audit: mutmut score per module (with a gate) and ML-fault "
                      "mutants",
        description="Run mutmut over [tool.mutmut] source_paths (incrementally), print the "
                    "score overall and per module with every undetected mutant's diff, and "
                    "optionally the ML-fault mutants by operator.")
    _add_report_options(audit)
    audit.add_argument("--max-children", type=positive_int, default=None, metavar="N",
                       help="parallel test processes (default: the number of CPUs)")
    audit.add_argument("--ml-mutants", action="store_true",
                       help="also run the libcst ML-fault mutants (eval/train mode, "
                            "zero_grad, seeds, dims, axes, flags, no_grad, dtypes)")
    audit.add_argument("--equivalents", type=Path, default=None, metavar="FILE",
                       help="reviewed equivalent-mutant list (default: [tool.mlprop] "
                            "equivalents, else equivalent_mutants.toml beside "
                            "pyproject.toml)")
    audit.add_argument("--suite", action=argparse.BooleanOptionalAction, default=None,
                       help="run mlprop's property suite against the project's target on "
                            "the mutants too (default: [tool.mlprop] suite)")
    audit.add_argument("--shard", default=None, metavar="K/N",
                       help="run only the K-th of N disjoint parts of the work (the same "
                            "partition on every machine) and write a shard result for "
                            "`mlprop audit merge`; the gate is applied at the merge")
    audit.add_argument("--shard-output", type=Path, default=None, metavar="FILE",
                       help="where --shard writes its result (default: "
                            "mlprop-audit-shard-K-of-N.json)")
    audit.add_argument("--timings", type=Path, default=None, metavar="JSON",
                       help="with --shard: an earlier audit's --json (unsharded or merged); "
                            "the parts are balanced by its per-mutant seconds (by count "
                            "without it). Give every shard the same file")
    audit.set_defaults(handler=run)
    commands = audit.add_subparsers(dest="audit_command", metavar="{merge}")
    merge = commands.add_parser(
        "merge", help="merge shard results into one report, score and gate",
        description="Merge the results of `mlprop audit --shard K/N` into the report, score "
                    "and exit code one unsharded audit gives. Refuses (exit 2) files that "
                    "are malformed, from another commit or configuration, or overlap; a "
                    "merge with shards missing names them and never passes.")
    merge.add_argument("results", type=Path, nargs="+", metavar="RESULT",
                       help="shard result files (any order)")
    _add_report_options(merge, keep_earlier=True)
    merge.set_defaults(handler=run_merge)


Runner = Callable[..., dict[str, Any]]


def run(args: argparse.Namespace, audit: Runner | None = None) -> int:
    """Run the audit (``audit`` is injectable for tests), print and write the reports."""
    from mlprop.audit import mutation, report

    if audit is None:
        audit = mutation.run_audit
    _check_report_paths(args)
    if args.equivalents is not None and not args.equivalents.is_file():
        raise UsageError(f"--equivalents: no such file: {args.equivalents}")
    shard, shard_output = _shard_options(args)
    report_dir, history, mlflow = (None, [], False) if shard else _prepare_outputs(args)
    options = mutation.AuditOptions(
        root=args.root, fail_under=args.fail_under, max_children=args.max_children,
        ml_mutants=args.ml_mutants, equivalents=args.equivalents,
        suite=getattr(args, "suite", None), shard=shard,
        timings=getattr(args, "timings", None))
    from mlprop.atomic import atomic_write_text
    from mlprop.audit.lock import audit_lock
    from mlprop.audit.shards import ShardError

    try:
        with audit_lock(args.root):  # a second audit of this project waits for this one
            result = audit(options)
    except (mutation.AuditError, ShardError) as exc:
        raise UsageError(str(exc)) from None
    if shard is not None:
        atomic_write_text(shard_output, json.dumps(result, indent=1) + "\n")
        units = len(result["units"])
        print(f"mlprop audit: shard {shard}: {units} mutants judged; result in "
              f"{shard_output} (merge every shard with `mlprop audit merge`)", file=sys.stderr)
        return EXIT_OK
    print(report.format_text(result))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.markdown is not None:
        atomic_write_text(args.markdown, report.format_markdown(result))
    _write_outputs(args, result, report_dir, history, mlflow)
    if not result.get("passed", False):
        print(result.get("verdict", "mlprop audit: failed"), file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _check_report_paths(args: argparse.Namespace) -> None:
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None and not path.resolve().parent.is_dir():
            raise UsageError(f"{option}: directory {path.parent} does not exist")


def _shard_options(args: argparse.Namespace) -> tuple[Any, Path | None]:
    """``--shard``/``--shard-output``/``--timings`` checked before anything runs."""
    from mlprop.audit.shards import Shard, ShardError

    text = getattr(args, "shard", None)
    timings = getattr(args, "timings", None)
    if text is None:
        for option, value in (("--shard-output", getattr(args, "shard_output", None)),
                              ("--timings", timings)):
            if value is not None:
                raise UsageError(f"{option} needs --shard K/N")
        return None, None
    try:
        shard = Shard.parse(text)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    for option in ("json", "markdown", "report", "fail_under", "mlflow"):
        if getattr(args, option, None) not in (None, False):
            raise UsageError(f"--{option.replace('_', '-')} is for the merge: a shard writes "
                             "only its result (mlprop audit merge ... --"
                             f"{option.replace('_', '-')})")
    output = args.shard_output or Path(f"mlprop-audit-shard-{shard.index}-of-{shard.count}.json")
    if not output.resolve().parent.is_dir():
        raise UsageError(f"--shard-output: directory {output.parent} does not exist")
    if timings is not None and not timings.is_file():
        raise UsageError(f"--timings: no such file: {timings}")
    return shard, output


def run_merge(args: argparse.Namespace) -> int:
    """``mlprop audit merge``: print and write the merged report; the exit code is the
    gate's (a partial merge never passes)."""
    from mlprop.atomic import atomic_write_text
    from mlprop.audit import merge, report
    from mlprop.audit.shards import ShardError

    for option, value in (("--shard", args.shard), ("--shard-output", args.shard_output),
                          ("--timings", args.timings), ("--max-children", args.max_children),
                          ("--ml-mutants", args.ml_mutants or None),
                          ("--equivalents", args.equivalents), ("--suite", args.suite)):
        if value is not None:
            raise UsageError(f"{option} is for the shards, not for `mlprop audit merge` (each "
                             "shard result already holds what it ran with)")
    _check_report_paths(args)
    report_dir, history, mlflow = _prepare_outputs(args)
    try:
        merged = merge.load(args.results)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    try:
        result, covering = merge.merge_report(merged, args.fail_under)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # past load_result
        files = ", ".join(str(path) for path, _ in merged.results)
        raise UsageError(f"audit merge: a field of wrong type or shape in one of {files} "
                         f"({type(exc).__name__}: {exc})") from None
    print(report.format_text(result))
    if merged.partial:
        print(f"mlprop audit merge: PARTIAL: {len(merged.results)} of {merged.count} shards; "
              f"missing {', '.join(result['missing_shards'])}", file=sys.stderr)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.markdown is not None:
        atomic_write_text(args.markdown, report.format_markdown(result))
    _write_outputs(args, result, report_dir, history, mlflow, covering=covering)
    if not result.get("passed", False):
        print(result.get("verdict", "mlprop audit: failed"), file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _prepare_outputs(args: argparse.Namespace) -> tuple[Path | None, list, bool]:
    """Check --report, --history and --mlflow before the audit starts (exit 2 at once)."""
    from mlprop import tracking
    from mlprop.report import ReportError, prepare_report_dir
    from mlprop.report.runs import AUDIT_HISTORY_PNG, load_history

    mlflow = tracking.mlflow_requested(getattr(args, "mlflow", None), args.root)
    if mlflow:
        tracking.require_mlflow()
    try:
        history = load_history(getattr(args, "history", []) or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report_dir = None
    if getattr(args, "report", None) is not None:
        try:
            report_dir = prepare_report_dir(args.report, force=args.force,
                                            extra_names=(AUDIT_HISTORY_PNG,))
        except ReportError as exc:
            raise UsageError(f"--report: {exc}") from None
    return report_dir, history, mlflow


def _write_outputs(args: argparse.Namespace, result: dict[str, Any], report_dir: Path | None,
                   history: list, mlflow: bool,
                   covering: dict[str, list[str]] | None = None) -> None:
    import tempfile

    from mlprop import tracking
    from mlprop.report import runs

    if report_dir is None and not mlflow:
        return
    with tempfile.TemporaryDirectory(prefix="mlprop-audit-") as scratch:
        directory = report_dir or Path(scratch)
        if covering is None:
            covering = runs.covering_tests(args.root)
        runs.write_files(directory, runs.audit_files(result, covering=covering,
                                                     history=history))
        if report_dir is not None:
            print(f"mlprop audit: report in {report_dir / 'report.html'}", file=sys.stderr)
        if mlflow:
            overall = result.get("mutmut", {}).get("overall", {})
            metrics = {"mutation_score": result.get("score"),
                       "ml_mutant_kill_rate": runs.ml_kill_rate(result),
                       "passed": bool(result.get("passed"))}
            metrics.update({f"mutants_{k}": v for k, v in overall.items()
                            if isinstance(v, int | float) and k != "score"})
            run_id = tracking.log_run(
                command="audit", target_spec=_target_spec(args.root),
                params={"fail_under": args.fail_under, "ml_mutants": args.ml_mutants},
                metrics=metrics, artifacts=directory, directory=args.root)
            print(f"mlprop audit: logged MLflow run {run_id}", file=sys.stderr)


def _target_spec(root: Path) -> str:
    """The target the project's suite checks (as the pytest plugin would resolve it)."""
    import os

    from mlprop.plugin import resolve_target_spec

    return resolve_target_spec(None, os.environ, root)[0]
