"""The ``mlprop`` command.

Exit codes: 0 success, 1 a check failed, 2 usage or input error (with a one-line reason on
stderr).

One module per subcommand, each with ``register(subparsers)`` (adds its parser, with
``handler=run``) and ``run(args) -> int`` (the exit code; may raise :class:`UsageError`).
A command module parses, calls the library and prints; the library never imports
``mlprop.cli`` (``tests/test_layering.py`` checks it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mlprop.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    non_negative_int,
    positive_int,
)
from mlprop.errors import MlpropError

__all__ = [
    "COMMANDS",
    "EXIT_CHECK_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "main",
    "non_negative_int",
    "positive_int",
]

COMMANDS = ("train", "predict", "check", "faults", "demo", "explain", "audit", "bench",
            "monitor", "init")
"""The subcommand modules of this package, in the order ``mlprop --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlprop", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"mlprop.cli.{name}").register(subparsers)
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
