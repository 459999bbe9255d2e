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
                         help="IDX (.gz ok), .npy, PNG or JPEG files (RGB for a colour "
                              "model, grayscale for a grayscale one)")
    predict.set_defaults(handler=run)


def _pipeline(architecture: str):
    """The serving module of the reference pipeline a package's architecture belongs to."""
    if architecture == "ColourResNet":
        from mlprop.colour import pipeline
    else:
        from mlprop.digits import pipeline
    return pipeline


def run(args: argparse.Namespace) -> int:
    from mlprop.digits.artifacts import load_package, read_manifest
    from mlprop.image_files import load_images

    manifest = read_manifest(args.model)
    pipeline = _pipeline(str(manifest.get("architecture")))
    model, _ = load_package(args.model, pipeline.model_dimensions)
    schema = pipeline.preprocess.SCHEMA  # the raw images the package's pipeline takes
    rows = []
    for path in args.files:
        try:  # say which of the files is wrong; nothing is printed unless every file reads
            images = load_images(path, schema)
            probabilities = pipeline.probabilities(model, images)
        except SchemaError as exc:
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
