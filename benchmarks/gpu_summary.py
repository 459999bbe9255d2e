"""Summarise the GPU benchmarks (``benchmarks/gpu.sh`` writes the JSON) against the goals.

    python benchmarks/gpu_summary.py GPU_JSON

Prints one row per benchmark (path, variant, batch, latency p50, images per second, ratio
to ``eager-default`` at the same batch and path) and the goals of issue 6: at least 3x the
eager fp32 throughput at the largest batch, at least 10 million images per second, and a
batch-1 latency under 50 microseconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BASELINE = "eager-default"
GOAL_SPEEDUP, GOAL_THROUGHPUT, GOAL_LATENCY_US = 3.0, 10e6, 50.0


def load(path: Path) -> tuple[dict, list[dict]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        median = bench["stats"]["median"]
        rows.append({"name": bench["name"], "path": info.get("path", "?"),
                     "variant": info.get("variant", "?"), "batch": info.get("batch_size", 0),
                     "p50_us": median * 1e6,
                     "images_per_second": info.get("batch_size", 0) / median,
                     "io_in_graph": info.get("io_in_graph")})
    return data, rows


def summarise(data: dict, rows: list[dict]) -> str:
    gpu = data.get("machine_info", {}).get("mlprop_gpu", {})
    lines = [f"device: {gpu.get('gpu')} (torch {gpu.get('torch')}, CUDA {gpu.get('cuda_build')})",
             ""]
    baseline = {(r["path"], r["batch"]): r["images_per_second"] for r in rows
                if r["variant"] == BASELINE}
    header = f"{'path':<24}{'variant':<26}{'batch':>7}{'p50 us':>11}{'images/s':>14}" \
             f"{'x eager':>9}"
    lines += [header, "-" * len(header)]
    for r in sorted(rows, key=lambda r: (r["path"], r["variant"], r["batch"])):
        base = baseline.get((r["path"], r["batch"]))
        ratio = f"{r['images_per_second'] / base:.2f}" if base else "-"
        note = "" if r["io_in_graph"] is None else f"  io_in_graph={r['io_in_graph']}"
        lines.append(f"{r['path']:<24}{r['variant']:<26}{r['batch']:>7}{r['p50_us']:>11.1f}"
                     f"{r['images_per_second']:>14,.0f}{ratio:>9}{note}")
    resident = [r for r in rows if r["path"] == "device-resident"]
    lines.append("")
    if resident:
        largest = max(r["batch"] for r in resident)
        at_largest = [r for r in resident if r["batch"] == largest]
        best = max(at_largest, key=lambda r: r["images_per_second"])
        base = baseline.get(("device-resident", largest))
        speedup = best["images_per_second"] / base if base else float("nan")
        lines.append(f"goal >= {GOAL_SPEEDUP:g}x eager fp32 at batch {largest}: {speedup:.2f}x "
                     f"({best['variant']}) -> {'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}")
        top = max(resident, key=lambda r: r["images_per_second"])
        lines.append(f"goal >= 10M images/s: {top['images_per_second'] / 1e6:.2f} M "
                     f"({top['variant']}, batch {top['batch']}) -> "
                     f"{'met' if top['images_per_second'] >= GOAL_THROUGHPUT else 'NOT met'}")
    for path in ("device-resident", "from-host"):
        ones = [r for r in rows if r["path"] == path and r["batch"] == 1]
        if ones:
            fast = min(ones, key=lambda r: r["p50_us"])
            met = "met" if fast["p50_us"] < GOAL_LATENCY_US else "NOT met"
            lines.append(f"goal batch-1 p50 < {GOAL_LATENCY_US:g} us ({path}): "
                         f"{fast['p50_us']:.1f} us ({fast['variant']}) -> {met}")
    wrong = [r for r in rows if r["path"].startswith("unsynchronized")]
    synced = baseline.get(("device-resident", 64))
    if wrong and synced:
        lines.append(f"timing without synchronize at batch 64: {wrong[0]['p50_us']:.1f} us "
                     f"vs {64 / synced * 1e6:.1f} us synchronized (what not to do)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data, rows = load(Path(argv[0]))
    print(summarise(data, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
