"""``mlprop check``: run the property suite against a target and summarise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlprop.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE


def register(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser("check", help="run the property suite against a target")
    check.add_argument("--target", help="MODULE:ATTR (default: as pytest resolves it)")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER,
                       help="extra pytest arguments after --")
    check.set_defaults(handler=run)


def run_property_suite(target: str | None, extra: Sequence[str]) -> int:
    """Run the suite (:func:`mlprop.suite.run_property_suite`); map pytest's exit to ours."""
    from mlprop import suite

    code = suite.run_property_suite(target, extra)
    if code == 0:
        print("mlprop check: all properties hold", file=sys.stderr)
        return EXIT_OK
    if code == 1:
        print("mlprop check: some properties failed (see above)", file=sys.stderr)
        return EXIT_CHECK_FAILED
    if code == 5:
        print("mlprop check: no property ran (empty selection)", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"mlprop check: pytest stopped with exit code {code}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    return run_property_suite(args.target, args.pytest_args)
