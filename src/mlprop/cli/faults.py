"""``mlprop faults``: plant every catalogue fault in a correct target, run the suite against
each and print the kill matrix; exit 1 if a fault slips through."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlprop.cli.common import EXIT_CHECK_FAILED, EXIT_OK, UsageError, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    faults = subparsers.add_parser("faults", help="sweep the fault catalogue against the "
                                   "suite and print the kill matrix")
    faults.add_argument("--target", default="mlprop.digits:target",
                        help="MODULE:ATTR of a correct target to plant the faults in")
    faults.add_argument("--fault", action="append", default=[], metavar="NAME",
                        help="only this fault (repeatable)")
    faults.add_argument("--json", type=Path, help="also write the matrix as JSON")
    faults.add_argument("--max-examples", type=positive_int, default=None,
                        help="cap Hypothesis examples per property (a faster, shallower sweep)")
    faults.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlprop.faults import CATALOGUE
    from mlprop.faults.sweep import format_matrix, load_properties, sweep
    from mlprop.target import load_target

    unknown = [name for name in args.fault if name not in CATALOGUE]
    if unknown:
        raise UsageError(f"--fault: unknown fault(s) {unknown}; known: {sorted(CATALOGUE)}")
    properties = load_properties()
    target = load_target(args.target)
    chosen = [CATALOGUE[name] for name in args.fault] if args.fault else list(CATALOGUE.values())
    skipped = [fault.name for fault in chosen if not fault.applies(target)]
    chosen = [fault for fault in chosen if fault.applies(target)]
    print(f"mlprop faults: {len(chosen)} faults x {len(properties)} properties against "
          f"{args.target}" + (f" ({len(skipped)} cannot be planted in it: "
                              f"{', '.join(skipped)})" if skipped else ""), file=sys.stderr)
    results = sweep(target, properties, chosen, progress=lambda r: print(
        f"  {r.fault.name}: caught by {len(r.caught_by)} ({r.seconds:.1f}s)", file=sys.stderr,
        flush=True), max_examples=args.max_examples)
    print(format_matrix(results, properties))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))
    failed = [r.fault.name for r in results if not r.caught_by or r.expected_missed]
    if failed:
        print(f"mlprop faults: not caught as expected: {failed}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK
