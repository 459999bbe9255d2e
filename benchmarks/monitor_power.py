"""Measure the drift monitor on the embedded digits (a plain script, not a pytest suite).

    .venv/bin/python benchmarks/monitor_power.py [--seeds 50] [--null-seeds 200] [--n 100]
        [--size NAME:SIZE ...] [--json]

1. Detection power: for each seed, the digits are split into two random halves (as
   ``mlprop drift --reference digits --current digits --seed S`` does); the current half is
   corrupted (brightness, noise, rotation, three sizes each) and the rate of drift verdicts
   over the seeds is printed. ``--n N`` also subsamples each half to N images (a harder
   test: power depends on the sample size).
2. False-alarm rate at alpha = 0.05: the same with no corruption, over ``--null-seeds``.
3. Time to build a report for 10,000 vs 10,000 images: the digits resampled with
   replacement, each copy with Gaussian noise (sd 0.02 * 255) so no two are identical; at
   8x8 and upsampled (bilinear) to 28x28, MNIST's size; current batch from the same
   distribution, and brightened by 0.01. Best of three runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from scipy import ndimage

from mlprop.digits.data import load_default_dataset
from mlprop.monitor import DriftConfig, apply_shift, drift_report

# Sizes near the detection threshold on the clean digits (whose background is exactly 0 and
# whose pixels take 17 levels, so any change of a gray level there is conspicuous):
# brightness 0.002 is +1 gray level (below 0.00196 uint8 rounding makes it a no-op),
# noise sd 0.001-0.002 is 0.26-0.51 gray levels, rotation 0.05-0.25 degrees.
SIZES = {
    "brightness": (0.002, 0.01, 0.05),
    "noise": (0.001, 0.0015, 0.002),
    "rotation": (0.05, 0.1, 0.25),
}


def halves(images, labels, seed, n):
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    first, second = np.sort(order[:half]), np.sort(order[half:])
    if n is not None:
        first, second = first[:n], second[:n]
    return images[first], labels[first], images[second], labels[second]


def detection_rate(images, labels, shift, seeds, n, config):
    hits = 0
    for seed in range(seeds):
        ref, ref_labels, cur, cur_labels = halves(images, labels, seed, n)
        if shift is not None:
            cur = apply_shift(cur, shift, seed=seed)
        report = drift_report(ref, cur, reference_labels=ref_labels, current_labels=cur_labels,
                              config=config)
        hits += report.drifted
    return hits / seeds


def resampled(images, count, seed, side):
    rng = np.random.default_rng(seed)
    picked = images[rng.integers(0, len(images), count)].astype(np.float64)
    if side != picked.shape[1]:
        picked = ndimage.zoom(picked, (1, side / picked.shape[1], side / picked.shape[2]),
                              order=1, grid_mode=True, mode="grid-constant")
    noisy = picked + rng.normal(0, 0.02 * 255, picked.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--null-seeds", type=int, default=200)
    parser.add_argument("--n", type=int, action="append", default=[],
                        help="also subsample each half to N images (repeatable)")
    parser.add_argument("--size", action="append", default=[], metavar="NAME:SIZE",
                        help="measure these shifts instead of the default grid (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = DriftConfig(alpha=0.05)
    images, labels = load_default_dataset()
    results: dict = {"alpha": config.alpha, "correction": config.correction,
                     "seeds": args.seeds, "null_seeds": args.null_seeds, "power": {},
                     "false_alarm_rate": {}, "seconds_10k_vs_10k": {},
                     "machine": f"{platform.processor() or platform.machine()}, "
                                f"python {platform.python_version()}"}
    for n in [None, *args.n]:
        key = "halves" if n is None else f"n={n}"
        size = f"{len(images) // 2} vs {len(images) - len(images) // 2}" if n is None else \
            f"{n} vs {n}"
        print(f"== {key}: {size} images, alpha {config.alpha} ({config.correction})")
        rate = detection_rate(images, labels, None, args.null_seeds, n, config)
        results["false_alarm_rate"][key] = rate
        print(f"false-alarm rate (no shift, {args.null_seeds} seeds): {rate:.3f}")
        shifts = args.size or [f"{name}:{s:g}" for name, sizes in SIZES.items() for s in sizes]
        for shift in shifts:
            rate = detection_rate(images, labels, shift, args.seeds, n, config)
            results["power"].setdefault(key, {})[shift] = rate
            print(f"detection rate {shift:<18} ({args.seeds} seeds): {rate:.2f}")
    for side in (8, 28):
        ref = resampled(images, 10_000, 1, side)
        for shift in (None, "brightness:0.01"):
            cur = resampled(images, 10_000, 2, side)
            if shift:
                cur = apply_shift(cur, shift)
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                report = drift_report(ref, cur)
                best = min(best, time.perf_counter() - start)
            case = f"{side}x{side}, {shift or 'same distribution'}"
            results["seconds_10k_vs_10k"][case] = best
            print(f"10,000 vs 10,000 images {case}: {best:.3f} s (drift found: "
                  f"{report.drifted})")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
