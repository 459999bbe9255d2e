"""The ``mlprop`` command.

Exit codes: 0 success, 1 a check failed, 2 usage or input error (with a one-line reason on
stderr).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlprop.errors import MlpropError, SchemaError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2

COMMAND_MODULES = (
    "mlprop.explain_command",
    "mlprop.audit.mutation_command",
    "mlprop.bench_command",
    "mlprop.monitor.command",
)
"""Modules that add subcommands: each has ``register(subparsers)``; handlers return an exit
code and may raise :class:`UsageError`."""


class UsageError(Exception):
    """Bad arguments or input: reported on one line, exit 2."""


def _integer(text: str, *, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts (epochs, rounds, processes): an integer >= 1."""
    return _integer(text, minimum=1, expected="a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type for seeds and thread counts: an integer >= 0."""
    return _integer(text, minimum=0, expected="a non-negative integer")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def cmd_train(args: argparse.Namespace) -> int:
    from mlprop.digits import data, pipeline, train
    from mlprop.digits.evaluate import format_metrics

    if args.data is not None:
        if not args.data.is_dir():
            raise UsageError(f"--data: no such directory: {args.data}")
        images, labels = data.load_idx_dataset(args.data)
        splits = pipeline.split_dataset(images, labels, seed=args.seed)
        source = str(args.data)
    else:
        splits = pipeline.reference_splits(seed=args.seed)
        source = "embedded scikit-learn digits"
    config = train.TrainConfig(epochs=args.epochs, seed=args.seed)
    print(f"training on {source}: {len(splits.train.labels)} train, {len(splits.val.labels)} "
          f"val, {len(splits.test.labels)} test images", file=sys.stderr)
    model, metrics, _ = pipeline.train_and_evaluate(
        splits, config, on_epoch=lambda stats: print(stats, file=sys.stderr, flush=True))
    out = pipeline.package_model(args.out, model, metrics, config, data=source)
    print(format_metrics(metrics))
    print(f"model package: {out} ({_dir_size(out)} bytes)")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from mlprop.digits import pipeline
    from mlprop.digits.artifacts import load_package
    from mlprop.image_files import load_images

    model, _ = load_package(args.model, pipeline.model_dimensions)
    rows = []
    for path in args.files:
        images = load_images(path)
        try:
            probabilities = pipeline.probabilities(model, images)
        except SchemaError as exc:  # say which of the files is wrong
            raise UsageError(f"{path}: {exc}") from None
        for index, row in enumerate(probabilities):
            rows.append({"file": str(path), "index": index, "class": int(row.argmax()),
                         "probability": float(row.max())})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['file']}[{row['index']}]: {row['class']} (p={row['probability']:.3f})")
    return EXIT_OK


def properties_dir() -> Path:
    """The property suite shipped beside the package (a source checkout)."""
    candidate = Path(__file__).resolve().parents[2] / "properties"
    if not candidate.is_dir():
        raise UsageError(f"property suite not found at {candidate}: run from a source "
                         "checkout of mlprop")
    return candidate


def run_property_suite(target: str | None, extra: Sequence[str]) -> int:
    """Run ``pytest properties`` against ``target``; map pytest's exit to ours."""
    suite = properties_dir()
    command = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics" if "--stats" in extra else "-rfE"]
    if target:
        command += ["--mlprop-target", target]
    command += [arg for arg in extra if arg != "--stats"]
    code = subprocess.call(command, cwd=suite.parent)
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


def cmd_check(args: argparse.Namespace) -> int:
    return run_property_suite(args.target, args.pytest_args)


def cmd_faults(args: argparse.Namespace) -> int:
    from mlprop.audit.faults import CATALOGUE
    from mlprop.audit.runner import format_matrix, load_properties, sweep
    from mlprop.target import load_target

    unknown = [name for name in args.fault if name not in CATALOGUE]
    if unknown:
        raise UsageError(f"--fault: unknown fault(s) {unknown}; known: {sorted(CATALOGUE)}")
    properties = load_properties(properties_dir())
    target = load_target(args.target)
    chosen = [CATALOGUE[name] for name in args.fault] if args.fault else list(CATALOGUE.values())
    print(f"mlprop faults: {len(chosen)} faults x {len(properties)} properties against "
          f"{args.target}", file=sys.stderr)
    results = sweep(target, properties, chosen, progress=lambda r: print(
        f"  {r.fault.name}: caught by {len(r.caught_by)} ({r.seconds:.1f}s)", file=sys.stderr,
        flush=True), max_examples=args.max_examples)
    print(format_matrix(results, properties))
    if args.json:
        report = [{"fault": r.fault.name, "component": r.fault.component,
                   "description": r.fault.description, "expected": list(r.fault.catches),
                   "caught_by": r.caught_by, "missed": r.missed, "seconds": r.seconds}
                  for r in results]
        args.json.write_text(json.dumps(report, indent=2))
    failed = [r.fault.name for r in results if not r.caught_by or r.expected_missed]
    if failed:
        print(f"mlprop faults: not caught as expected: {failed}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    code = cmd_train(args)
    if code != EXIT_OK:
        return code
    return run_property_suite(None, [])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlprop", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_train_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--data", type=Path, help="directory of MNIST IDX files "
                         "(default: the embedded scikit-learn digits)")
        sub.add_argument("--epochs", type=positive_int, default=25)
        sub.add_argument("--seed", type=non_negative_int, default=0)
        sub.add_argument("--out", type=Path, default=Path("mlprop-model"),
                         help="where to write the model package (default: ./mlprop-model)")

    train = commands.add_parser("train", help="train the reference CNN and package it")
    add_train_options(train)
    train.set_defaults(handler=cmd_train)

    predict = commands.add_parser("predict", help="classify images with a model package")
    predict.add_argument("--model", type=Path, required=True, help="model package directory")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.add_argument("files", type=Path, nargs="+", metavar="FILE",
                         help="IDX (.gz ok), .npy or PNG files")
    predict.set_defaults(handler=cmd_predict)

    check = commands.add_parser("check", help="run the property suite against a target")
    check.add_argument("--target", help="MODULE:ATTR (default: as pytest resolves it)")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER,
                       help="extra pytest arguments after --")
    check.set_defaults(handler=cmd_check)

    faults = commands.add_parser("faults", help="sweep the fault catalogue against the suite "
                                 "and print the kill matrix")
    faults.add_argument("--target", default="mlprop.digits:target",
                        help="MODULE:ATTR of a correct target to plant the faults in")
    faults.add_argument("--fault", action="append", default=[], metavar="NAME",
                        help="only this fault (repeatable)")
    faults.add_argument("--json", type=Path, help="also write the matrix as JSON")
    faults.add_argument("--max-examples", type=positive_int, default=None,
                        help="cap Hypothesis examples per property (a faster, shallower sweep)")
    faults.set_defaults(handler=cmd_faults)

    demo = commands.add_parser("demo", help="train the reference model, then run the suite")
    add_train_options(demo)
    demo.set_defaults(handler=cmd_demo)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name + ".").startswith(exc.name + "."):
                continue  # that feature is not installed in this checkout
            raise
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    try:
        return args.handler(args)
    except BrokenPipeError:
        # the reader of stdout went away (`mlprop drift --json | head`): no traceback, and
        # no second error when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CHECK_FAILED
    except (UsageError, MlpropError, FileNotFoundError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        print(f"mlprop {args.command}: error: {reason}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    # run the imported module's main, not this __main__ copy: the subcommand modules raise
    # mlprop.cli.UsageError, which is a different class from __main__.UsageError
    from mlprop.cli import main as imported_main

    sys.exit(imported_main())
