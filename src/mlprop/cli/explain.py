"""``mlprop explain``: a PNG grid of holdout images with their SHAP heatmaps, and the
attribution-stability figures of the model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mlprop.cli.common import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    explain = subparsers.add_parser("explain", help="SHAP heatmaps of holdout images (PNG) "
                                    "and attribution-stability figures")
    explain.add_argument("--model", type=Path, help="model package directory (default: the "
                         "cached reference model)")
    explain.add_argument("--n", type=int, default=16, help="images in the grid (default 16)")
    explain.add_argument("--out", type=Path, default=Path("shap.png"), help="PNG to write")
    explain.add_argument("--seed", type=int, default=0, help="chooses images and background")
    explain.add_argument("--background", type=int, default=32,
                         help="background images drawn from the holdout (default 32)")
    explain.set_defaults(handler=run)


def _load_model(path: Path | None) -> torch.nn.Module:
    from mlprop.digits import pipeline
    from mlprop.digits.artifacts import load_package

    if path is None:
        return pipeline.trained_model()
    model, _ = load_package(path, pipeline.model_dimensions)
    return model


def run(args: argparse.Namespace) -> int:
    from mlprop.attribution import explain
    from mlprop.digits import pipeline
    from mlprop.digits.preprocess import preprocess
    from mlprop.explanations import (
        PERTURBATION_RADIUS,
        PERTURBED_COPIES,
        draw_grid,
        stability_figures,
    )

    images, labels = pipeline.holdout()
    if not 1 <= args.n <= 64:
        raise UsageError(f"--n: expected 1 to 64 images, got {args.n}")
    if not 1 <= args.background <= len(images) - args.n:
        raise UsageError(f"--background: expected 1 to {len(images) - args.n}, "
                         f"got {args.background}")
    if args.out.suffix.lower() != ".png":
        raise UsageError(f"--out: expected a .png path, got {args.out}")
    model = _load_model(args.model)
    order = np.random.default_rng(args.seed).permutation(len(images))
    chosen, labels = images[order[:args.n]], labels[order[:args.n]]
    background = torch.from_numpy(preprocess(images[order[args.n:args.n + args.background]]))
    started = time.perf_counter()
    result = explain(model, torch.from_numpy(preprocess(chosen)), background)
    seconds = (time.perf_counter() - started) / len(chosen)
    probabilities = pipeline.probabilities(model, chosen)
    draw_grid(chosen, preprocess(chosen), result.values, result.classes,
              probabilities.max(axis=1), labels, args.out)
    scale = np.maximum(np.abs(result.outputs - result.baseline), 1.0)
    figures = stability_figures(model, chosen[:min(8, len(chosen))], background, preprocess,
                                args.seed)
    print(f"wrote {args.out} ({len(chosen)} images, background {args.background})")
    print(f"seconds per explanation: {seconds:.3f}")
    print(f"completeness: max relative gap {float((result.completeness_gap() / scale).max()):.2e}")
    print(f"stability (radius {PERTURBATION_RADIUS} grey levels, {PERTURBED_COPIES} copies): "
          f"median max-sensitivity {figures['median_max_sensitivity']:.3f}, mean top-"
          f"{int(figures['top_k'])} overlap {figures['mean_top_k_overlap']:.3f}")
    sys.stdout.flush()
    return 0
