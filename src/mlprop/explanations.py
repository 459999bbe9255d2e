"""Figures for ``mlprop explain``: attribution stability under raw-pixel noise, and a PNG
grid of images beside their SHAP heatmaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PERTURBATION_RADIUS = 8
PERTURBED_COPIES = 3
TOP_K_FRACTION = 0.05


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
