"""``mlprop bench compare BASE HEAD``: one revision's inference speed against another's;
``mlprop bench run``: the shipped target benchmarks in the current project.

The ``compare``-marked set of mlprop's target benchmarks (or, with ``--benchmarks PATH``,
the project's own suite) runs against BASE and HEAD, from two ``git worktree`` s: after a
throwaway warm job, ``--rounds`` jobs
in which a BASE and a HEAD process take turns round by round (details and the decision
rule: :mod:`mlprop.bench`). Exit codes: 0 no
regression, 1 a regression beyond the threshold and the noise, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from mlprop.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    UsageError,
    non_negative_int,
    positive_int,
)


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0 < value < 1000:
        raise argparse.ArgumentTypeError(f"expected a percentage in (0, 1000), got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks: compare two revisions")
    actions = bench.add_subparsers(dest="bench_command", required=True, metavar="ACTION")
    compare = actions.add_parser(
        "compare", help="the target's benchmarks at BASE and at HEAD, interleaved; "
        "exit 1 on a regression beyond the threshold and the noise")
    compare.add_argument("base", metavar="BASE", help="the reference revision (commit, "
                         "branch, tag)")
    compare.add_argument("head", metavar="HEAD", help="the revision under test")
    compare.add_argument("--fail-over", type=_percent, default=10.0, metavar="PERCENT",
                         help="flag a benchmark whose median HEAD/BASE ratio exceeds "
                         "1 + PERCENT/100 beyond the noise (default 10)")
    compare.add_argument("--rounds", type=positive_int, default=7, metavar="N",
                         help="lockstep jobs after the throwaway warm job, each giving one "
                         "HEAD/BASE ratio per benchmark (default 7)")
    compare.add_argument("--timing-rounds", type=positive_int, default=60, metavar="N",
                         help="timing rounds per benchmark and side in each job; BASE's and "
                         "HEAD's rounds alternate (default 60)")
    compare.add_argument("--marker", default="compare", help="pytest marker selecting the "
                         "benchmarks (default: compare)")
    compare.add_argument("-k", dest="keyword", default=None, metavar="EXPR",
                         help="further select benchmarks by pytest -k expression")
    compare.add_argument("--threads", type=non_negative_int, default=1, metavar="N",
                         help="OMP/MKL threads per run (default 1: steadier numbers on a "
                         "busy machine; 0: the library default)")
    compare.add_argument("--statistic", choices=("trimmed", "median", "mean", "min"),
                         default="trimmed", help="what each job reports per benchmark and "
                         "side over its timing rounds (default trimmed: the mean of the "
                         "middle 80%%)")
    compare.add_argument("--no-pin", dest="pin", action="store_false",
                         help="do not pin both sides of a job to one CPU while timing")
    compare.add_argument("--repo", type=Path, default=Path.cwd(),
                         help="the git repository (default: the current directory)")
    compare.add_argument("--target", default=None, metavar="MODULE:ATTR",
                         help="the target both revisions import (default: $MLPROP_TARGET, "
                         "then [tool.mlprop] target)")
    compare.add_argument("--benchmarks", default=None, metavar="PATH",
                         help="run your own pytest-benchmark suite at PATH (in HEAD's "
                         "checkout, against each revision's src/) instead of mlprop's "
                         "target benchmarks")
    compare.add_argument("--allow-dirty", action="store_true",
                         help="compare even when a revision is the checked-out commit and "
                         "tracked files have uncommitted changes (they are not measured)")
    compare.add_argument("--json", type=Path, help="also write the comparison as JSON")
    compare.add_argument("--report", type=Path, default=None, metavar="DIR",
                         help="write report.html (per benchmark BASE's and HEAD's times as a "
                              "plot, the verdict), the plots as PNG, summary.md and "
                              "results.json to DIR")
    compare.add_argument("--force", action="store_true",
                         help="let --report overwrite a report already in DIR")
    compare.add_argument("--mlflow", action="store_true", default=None,
                         help="log the comparison to MLflow (needs the mlprop[mlflow] extra)")
    compare.set_defaults(handler=run)
    suite = actions.add_parser(
        "run", help="mlprop's target benchmarks (predict, preprocess, forward pass, "
        "augmentations at batch 1/64/1024) in this project, as pytest-benchmark JSON")
    suite.add_argument("--target", default=None, metavar="MODULE:ATTR",
                       help="the target (default: $MLPROP_TARGET, [tool.mlprop] target)")
    suite.add_argument("--device", default="cpu", metavar="cpu|cuda",
                       help="where the model and its inputs live (default cpu; cuda adds "
                       "batch 16384)")
    suite.add_argument("--json", type=Path, default=None, metavar="FILE",
                       help="write pytest-benchmark's JSON to FILE")
    suite.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="-- PYTEST ARGS",
                       help="more pytest/pytest-benchmark options (--benchmark-autosave, "
                       "--benchmark-compare, -k, ...)")
    suite.set_defaults(handler=run_suite)


def run_suite(args: argparse.Namespace) -> int:
    """``mlprop bench run``: pytest's exit code (0, 1), 2 on a usage error."""
    from mlprop.bench import CompareError, suite_run

    extra = list(args.pytest_args or [])
    extra = extra[1:] if extra[:1] == ["--"] else extra
    try:
        code = suite_run.run_suite(target=args.target, device=args.device,
                                   json_path=args.json, extra=extra)
    except CompareError as exc:
        raise UsageError(str(exc)) from None
    return code if code in (EXIT_OK, EXIT_CHECK_FAILED) else 2


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    from mlprop import bench
    from mlprop.atomic import atomic_write_text

    threshold = args.fail_over / 100.0
    report_dir, mlflow = _prepare_outputs(args)
    started = time.perf_counter()
    # A plain SIGTERM (or a SIGINT that a background shell set to be ignored) would skip
    # the clean-up: the benchmark processes would wait on their FIFOs forever and the
    # worktrees would stay. Turn both into KeyboardInterrupt, which unwinds through it.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    try:
        report = bench.compare_revisions(
            args.repo, args.base, args.head, rounds=args.rounds, threshold=threshold,
            marker=args.marker, keyword=args.keyword, threads=args.threads or None,
            statistic=args.statistic, timing_rounds=args.timing_rounds,
            pin=args.pin, benchmarks=args.benchmarks, target=args.target,
            allow_dirty=args.allow_dirty,
            progress=lambda line: print(f"mlprop bench: {line}", file=sys.stderr,
                                        flush=True))
    except bench.CompareError as exc:
        raise UsageError(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    elapsed = time.perf_counter() - started
    print(f"BASE {args.base} ({report.base[:12]})  HEAD {args.head} ({report.head[:12]})")
    print(bench.format_comparisons(report.comparisons, threshold, report.statistic))
    load_text = f"; load average at start {load[0]:.2f}" if load else ""
    print(f"took {elapsed:.0f} s{load_text}")
    if args.json:
        data = report.as_dict()
        data.update(seconds=elapsed, loadavg_at_start=load)
        atomic_write_text(args.json, json.dumps(data, indent=2))  # old file or new, never half
    _write_outputs(args, report, report_dir, mlflow, elapsed, load)
    if report.regressions:
        names = ", ".join(c.name.split("::")[-1] for c in report.regressions)
        print(f"mlprop bench compare: regression beyond {args.fail_over:g}%: {names}",
              file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _prepare_outputs(args: argparse.Namespace) -> tuple[Path | None, bool]:
    """Check --report and --mlflow before the comparison starts (exit 2 at once)."""
    from mlprop import tracking
    from mlprop.report import ReportError, prepare_report_dir

    mlflow = tracking.mlflow_requested(getattr(args, "mlflow", None), args.repo)
    if mlflow:
        tracking.require_mlflow()
    if getattr(args, "report", None) is None:
        return None, mlflow
    try:
        return prepare_report_dir(args.report, force=args.force), mlflow
    except ReportError as exc:
        raise UsageError(f"--report: {exc}") from None


def _write_outputs(args: argparse.Namespace, report, report_dir: Path | None, mlflow: bool,
                   elapsed: float, load) -> None:
    import statistics
    import tempfile

    from mlprop import tracking
    from mlprop.report import runs

    if report_dir is None and not mlflow:
        return
    data = report.as_dict()
    data.update(seconds=elapsed, loadavg_at_start=load)
    with tempfile.TemporaryDirectory(prefix="mlprop-bench-") as scratch:
        directory = report_dir or Path(scratch)
        runs.write_files(directory, runs.bench_files(data))
        if report_dir is not None:
            print(f"mlprop bench: report in {report_dir / 'report.html'}", file=sys.stderr)
        if mlflow:
            metrics: dict[str, float] = {"regressions": len(report.regressions),
                                         "seconds": elapsed}
            for c in report.comparisons:
                name = c.name.split("::")[-1]
                metrics[tracking.metric_key("ratio", name)] = c.ratio
                batch = runs.batch_size(name)  # test_bench_predict[64]: 64 images a call
                unit = "images_per_s" if batch else "calls_per_s"
                for side, values in (("base", c.base), ("head", c.head)):
                    seconds = statistics.median(values)
                    if seconds > 0:
                        metrics[tracking.metric_key(unit, name, side)] = (batch or 1) / seconds
            run_id = tracking.log_run(
                command="bench compare", target_spec=_target_spec(args.repo),
                params={"base": report.base, "head": report.head, "rounds": report.rounds,
                        "fail_over_percent": args.fail_over, "statistic": report.statistic},
                metrics=metrics, artifacts=directory, directory=args.repo)
            print(f"mlprop bench: logged MLflow run {run_id}", file=sys.stderr)


def _target_spec(root: Path) -> str:
    from mlprop.plugin import resolve_target_spec

    return resolve_target_spec(None, os.environ, root)[0]
