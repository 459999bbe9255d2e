"""``mlprop train``: train the reference CNN, print its metrics, write a model package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlprop.cli.common import EXIT_OK, UsageError, non_negative_int, positive_int


def add_train_options(sub: argparse.ArgumentParser) -> None:
    """The options ``train`` and ``demo`` share."""
    sub.add_argument("--data", type=Path, help="directory of MNIST IDX files "
                     "(default: the embedded scikit-learn digits)")
    sub.add_argument("--epochs", type=positive_int, default=25)
    sub.add_argument("--seed", type=non_negative_int, default=0)
    sub.add_argument("--out", type=Path, default=Path("mlprop-model"),
                     help="where to write the model package (default: ./mlprop-model)")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train the reference CNN and package it")
    add_train_options(train)
    train.set_defaults(handler=run)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def run(args: argparse.Namespace) -> int:
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
