"""``mlprop explain``: a PNG grid of holdout images with their SHAP heatmaps, and the
attribution-stability figures of the model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

PERTURBATION_RADIUS = 8
PERTURBED_COPIES = 3
TOP_K_FRACTION = 0.05


def register(commands) -> None:
    explain = commands.add_parser("explain", help="SHAP heatmaps of holdout images (PNG) and "
                                  "attribution-stability figures")
    explain.add_argument("--model", type=Path, help="model package directory (default: the "
                         "cached reference model)")
    explain.add_argument("--n", type=int, default=16, help="images in the grid (default 16)")
    explain.add_argument("--out", type=Path, default=Path("shap.png"), help="PNG to write")
    explain.add_argument("--seed", type=int, default=0, help="chooses images and background")
    explain.add_argument("--background", type=int, default=32,
                         help="background images drawn from the holdout (default 32)")
    explain.set_defaults(handler=cmd_explain)


def _load_model(path: Path | None) -> torch.nn.Module:
    from mlprop.digits import pipeline
    from mlprop.digits.artifacts import load_package

    if path is None:
        return pipeline.trained_model()
    model, _ = load_package(path, pipeline.model_dimensions)
    return model


def stability_figures(model, images: np.ndarray, background: torch.Tensor, preprocess,
                      seed: int) -> dict[str, float]:
    """Median relative max-sensitivity and mean top-k overlap under raw-pixel noise."""
    from mlprop.attribution import explain, max_sensitivity, top_k_overlap

    rng = np.random.default_rng(seed)
    reference = explain(model, torch.from_numpy(preprocess(images)), background)
    k = max(1, int(reference.values[0].size * TOP_K_FRACTION))
    sensitivities, overlaps = [], []
    for index in range(len(images)):
        noise = rng.integers(-PERTURBATION_RADIUS, PERTURBATION_RADIUS + 1,
                             size=(PERTURBED_COPIES, *images.shape[1:]))
        copies = np.clip(images[index].astype(np.int16) + noise, 0, 255).astype(np.uint8)
        perturbed = explain(model, torch.from_numpy(preprocess(copies)), background,
                            classes=[reference.classes[index]] * PERTURBED_COPIES).values
        sensitivities.append(max_sensitivity(reference.values[index], list(perturbed)))
        overlaps.extend(top_k_overlap(reference.values[index], p, k) for p in perturbed)
    return {"median_max_sensitivity": float(np.median(sensitivities)),
            "mean_top_k_overlap": float(np.mean(overlaps)), "top_k": float(k),
            "radius": float(PERTURBATION_RADIUS)}


def draw_grid(images: np.ndarray, inputs: np.ndarray, attributions: np.ndarray,
              classes: np.ndarray, confidences: np.ndarray, labels: np.ndarray,
              out: Path) -> None:
    """Pairs of panels: the raw image, then its heatmap (red: evidence for the predicted
    class, blue: against), on a symmetric colour scale per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(images)
    columns = 4
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, 2 * columns, figsize=(2 * columns * 1.6, rows * 2.3),
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for index in range(count):
        row, column = divmod(index, columns)
        raw_axis, heat_axis = axes[row, 2 * column], axes[row, 2 * column + 1]
        raw_axis.imshow(images[index], cmap="gray", vmin=0, vmax=255)
        verdict = "ok" if classes[index] == labels[index] else f"label {labels[index]}"
        raw_axis.set_title(f"pred {classes[index]} ({confidences[index]:.2f})\n{verdict}",
                           fontsize=8, color="black" if verdict == "ok" else "crimson")
        heat = attributions[index].sum(axis=0)
        limit = float(np.abs(heat).max()) or 1.0
        heat_axis.imshow(inputs[index].mean(axis=0), cmap="gray")  # what the model saw
        heat_axis.imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=0.65)
        heat_axis.set_title(f"SHAP, class {classes[index]}", fontsize=8)
    figure.suptitle("SHAP attributions for the predicted class (red: for, blue: against)",
                    fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def cmd_explain(args: argparse.Namespace) -> int:
    from mlprop.attribution import explain
    from mlprop.cli import UsageError
    from mlprop.digits import pipeline
    from mlprop.digits.preprocess import preprocess

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
