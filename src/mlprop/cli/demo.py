"""``mlprop demo``: ``train``, then ``check`` the default target."""

from __future__ import annotations

import argparse

from mlprop.cli import check, train
from mlprop.cli.common import EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="train the reference model, then run the suite")
    train.add_train_options(demo)
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    code = train.run(args)
    if code != EXIT_OK:
        return code
    return check.run_property_suite(None, [])
