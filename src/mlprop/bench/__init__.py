"""Benchmark helpers: CUDA-correct timing, and one revision's benchmarks against another's.

The package is split by concern: :mod:`~mlprop.bench.timing` (timing and turn-taking),
:mod:`~mlprop.bench.revisions` (git worktrees), :mod:`~mlprop.bench.stats` (ratios,
intervals, verdicts, the table, pytest-benchmark JSON) and :mod:`~mlprop.bench.compare`
(lockstep jobs and :func:`compare_revisions`). The names below are re-exported here.

Timing. CUDA work is queued asynchronously: a timed function that does not wait for the
device measures kernel launches, not the work (0.16 ms instead of 1.96 ms for the reference
CNN at batch 64 on an H100). :func:`timed_inference` therefore

- warms up outside the timing (cuDNN autotuning, the caching allocator, lazy init, graph
  capture, compilation) and waits for the device,
- times a function that calls ``torch.cuda.synchronize`` *inside*, after the work, and
- uses pytest-benchmark's pedantic mode (fixed rounds, no calibration loop that would
  run the function more often than asked);

and records ``extra_info``: batch size, images per second, latency p50, device name, dtype,
torch version.

Comparison. :func:`compare_revisions` checks BASE and HEAD out as two ``git worktree`` s and
runs HEAD's benchmark code (the ``compare``-marked set) against each revision's ``src/``:
pytest's ``pythonpath`` ini setting overrides ``PYTHONPATH``, so it is overridden with
``-o pythonpath=...``, and ``PYTHONPATH`` is set as well (older pytest versions import the
``pytest11`` entry point, hence ``mlprop``, before applying ``pythonpath``); every run
proves which ``src/`` it imported (``benchmarks/conftest.py``). The timing harness (this
module) is HEAD's on both sides.

Interleaving. On a shared machine the load changes every few seconds, so two runs made one
after the other see different machines. Each *job* therefore starts a BASE and a HEAD
pytest process together and lets them take turns round by round (:class:`Turns`: one
token passed through two FIFOs, so exactly one side is timing at any moment and BASE and
HEAD rounds alternate ABAB... milliseconds apart). One throwaway warm job (imports,
caches, model training), then ``rounds`` jobs, the side that starts alternating. Between
rounds (untimed) each side also moves its heap (:class:`LayoutJitter`: here the same
forward pass took 8 or 12 ms depending only on where its buffers landed). Both
sides of a job time on one CPU (the CPU changes from job to job); runs are
single-threaded by default (``OMP_NUM_THREADS=1``: OpenMP threads waiting for a busy core
make times several-fold noisier).

Verdict. Each job gives, per benchmark and side, the 10%-trimmed mean of its timing rounds
(``statistic``; also ``median``, ``mean`` or ``min``; with jittered placements a round's
time is bimodal, 8 or 12 ms for the forward pass, and the median of such a mixture jumps
between the modes while the mean averages them; trimming drops load spikes) and the ratio
HEAD/BASE. Over the jobs: the median ratio, its min-max and a bootstrap 95% interval of
that median. A regression is flagged only when the median ratio exceeds ``1 + threshold``
*and* the whole interval lies above 1 (the slowdown is beyond the job-to-job noise; with
the default 7 jobs the interval runs from the second-lowest to the second-highest ratio,
so one outlying job neither makes nor hides a regression).
"""


from __future__ import annotations

from mlprop.bench.compare import (
    DEFAULT_SELECTION,
    SIDES,
    BenchmarkRun,
    ComparisonReport,
    Runner,
    compare_revisions,
    first_side,
    run_lockstep,
    timing_cpus,
)
from mlprop.bench.revisions import (
    CompareError,
    git,
    repository_root,
    resolve_revision,
    worktrees,
)
from mlprop.bench.stats import (
    STATISTICS,
    TRIM,
    BenchmarkComparison,
    BenchmarkJsonError,
    bootstrap_median_interval,
    compare_medians,
    format_comparisons,
    read_sources,
    read_times,
    trimmed_mean,
    verdict,
)
from mlprop.bench.timing import (
    DONE,
    MAX_ROUNDS,
    MIN_ROUNDS,
    TURN,
    TURN_ENV,
    LayoutJitter,
    Turns,
    auto_rounds,
    current_turns,
    device_name,
    gpu_machine_info,
    median_seconds,
    synchronized,
    timed_inference,
)

__all__ = [
    "DEFAULT_SELECTION", "DONE", "MAX_ROUNDS", "MIN_ROUNDS", "SIDES", "STATISTICS", "TRIM",
    "TURN", "TURN_ENV", "BenchmarkComparison", "BenchmarkJsonError", "BenchmarkRun", "CompareError",
    "ComparisonReport", "LayoutJitter", "Runner", "Turns", "auto_rounds",
    "bootstrap_median_interval", "compare_medians", "compare_revisions", "current_turns",
    "device_name", "first_side", "format_comparisons", "git", "gpu_machine_info",
    "median_seconds", "read_sources", "read_times", "repository_root", "resolve_revision",
    "run_lockstep", "synchronized", "timed_inference", "timing_cpus", "trimmed_mean",
    "verdict", "worktrees",
]
