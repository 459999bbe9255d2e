"""``mlprop predict``: classify image files with a model package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlprop.cli.common import EXIT_OK, UsageError
from mlprop.errors import SchemaError


def register(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser("predict", help="classify images with a model package")
    predict.add_argument("--model", type=Path, required=True, help="model package directory")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.add_argument("files", type=Path, nargs="+", metavar="FILE",
                         help="IDX (.gz ok), .npy or PNG files")
    predict.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
