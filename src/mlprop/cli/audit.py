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


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser(
        "audit", help="mutation audit: mutmut score per module (with a gate) and ML-fault "
                      "mutants",
        description="Run mutmut over [tool.mutmut] source_paths (incrementally), print the "
                    "score overall and per module with every undetected mutant's diff, and "
                    "optionally the ML-fault mutants by operator.")
    audit.add_argument("--fail-under", type=_percent, default=None, metavar="PCT",
                       help="exit 1 if the mutmut score is under PCT percent")
    audit.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    audit.add_argument("--markdown", type=Path, metavar="FILE",
                       help="write a short Markdown report (for CI artifacts)")
    audit.add_argument("--max-children", type=positive_int, default=None, metavar="N",
                       help="parallel test processes (default: the number of CPUs)")
    audit.add_argument("--ml-mutants", action="store_true",
                       help="also run the libcst ML-fault mutants (eval/train mode, "
                            "zero_grad, seeds, dims, axes, flags, no_grad, dtypes)")
    audit.add_argument("--equivalents", type=Path, default=None, metavar="FILE",
                       help="reviewed equivalent-mutant list (default: the one shipped in "
                            "mlprop/audit/equivalent_mutants.toml)")
    audit.add_argument("--root", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    audit.set_defaults(handler=run)


Runner = Callable[..., dict[str, Any]]


def run(args: argparse.Namespace, audit: Runner | None = None) -> int:
    """Run the audit (``audit`` is injectable for tests), print and write the reports."""
    from mlprop.audit import mutation, report

    if audit is None:
        audit = mutation.run_audit
    for option, path in (("--json", args.json), ("--markdown", args.markdown)):
        if path is not None and not path.resolve().parent.is_dir():
            raise UsageError(f"{option}: directory {path.parent} does not exist")
    if args.equivalents is not None and not args.equivalents.is_file():
        raise UsageError(f"--equivalents: no such file: {args.equivalents}")
    options = mutation.AuditOptions(
        root=args.root, fail_under=args.fail_under, max_children=args.max_children,
        ml_mutants=args.ml_mutants,
        equivalents=args.equivalents or mutation.EQUIVALENTS_FILE)
    try:
        result = audit(options)
    except mutation.AuditError as exc:
        raise UsageError(str(exc)) from None
    print(report.format_text(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(report.format_markdown(result), encoding="utf-8")
    if not result.get("passed", False):
        print(result.get("verdict", "mlprop audit: failed"), file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK
