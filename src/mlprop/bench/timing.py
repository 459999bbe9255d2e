"""CUDA-correct timing of one batch of inference, and the turn-taking that lets two
benchmark processes (BASE and HEAD of ``mlprop bench compare``) time in strict alternation.

Catches: a CUDA benchmark that measures kernel launches instead of work (no synchronize
inside the timed call), warm-up cost (cuDNN autotuning, lazy init) counted as inference
time, and two revisions timed minutes apart under different machine load.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

# ---------------------------------------------------------------------------------------
# CUDA-correct timing


def synchronized(fn: Callable[[], Any], device: Any) -> Callable[[], Any]:
    """``fn`` followed by a device synchronization, as one callable: the thing to time."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return fn

    def run() -> Any:
        result = fn()
        torch.cuda.synchronize(device)
        return result

    return run


def device_name(device: Any) -> str:
    """``NVIDIA H100 80GB HBM3`` for a CUDA device, the processor for the CPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def timed_inference(benchmark: Any, fn: Callable[[], Any], *, device: Any, batch: int,
                    dtype: str = "float32", rounds: int | None = None, seconds: float = 1.0,
                    iterations: int = 1, warmup: int = 3, **extra: Any) -> Any:
    """Time ``fn`` (one batch of inference) with pytest-benchmark, correctly on CUDA.

    Warm-up runs outside the timing; the timed callable synchronizes inside; pedantic mode
    with ``rounds`` x ``iterations`` (``rounds=None``: as many as fit in ``seconds``, judged
    by the fastest warm-up call, between :data:`MIN_ROUNDS` and :data:`MAX_ROUNDS`). Under
    ``mlprop bench compare`` each round first waits for this process's turn (see
    :class:`Turns`) and the rounds are the comparison's fixed number. Adds ``extra_info``
    (batch_size, device, device_name, dtype, torch, images_per_second, latency_p50_us and
    ``extra``). Returns ``fn``'s result from the last timed call.
    """
    import torch

    timed = synchronized(fn, device)
    per_call = float("inf")
    for _ in range(max(1, warmup)):  # warm-up calls, each waited for; the fastest one
        start = time.perf_counter()  # chooses the rounds
        timed()
        per_call = min(per_call, time.perf_counter() - start)
    turns = current_turns()
    if turns is not None:
        jitter = _JITTER.setdefault("current", LayoutJitter())

        def between_rounds() -> None:
            jitter()
            turns.wait()

        result = benchmark.pedantic(timed, setup=between_rounds,
                                    rounds=rounds or turns.rounds, iterations=1,
                                    warmup_rounds=0)
    else:
        if rounds is None:
            rounds = auto_rounds(per_call * iterations, seconds)
        result = benchmark.pedantic(timed, rounds=rounds, iterations=iterations,
                                    warmup_rounds=0)
    info = {"batch_size": batch, "device": str(torch.device(device)),
            "device_name": device_name(device), "dtype": dtype, "torch": torch.__version__,
            **extra}
    median = median_seconds(benchmark)
    if median:
        info["images_per_second"] = batch / median
        info["latency_p50_us"] = median * 1e6
    benchmark.extra_info.update(info)
    return result


MIN_ROUNDS, MAX_ROUNDS = 5, 10_000


def auto_rounds(seconds_per_round: float, budget: float) -> int:
    """How many rounds of ``seconds_per_round`` fit in ``budget`` (clamped)."""
    if seconds_per_round <= 0:
        return MAX_ROUNDS
    return int(min(MAX_ROUNDS, max(MIN_ROUNDS, budget / seconds_per_round)))


def median_seconds(benchmark: Any) -> float | None:
    """The median of a finished benchmark (None when benchmarking is disabled)."""
    stats = getattr(benchmark, "stats", None)
    inner = getattr(stats, "stats", None)
    return getattr(inner, "median", None)


def gpu_machine_info() -> dict[str, Any]:
    """What pytest-benchmark's machine id cannot tell: the GPU (and torch's CUDA build)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return {"cuda_available": False}
    info: dict[str, Any] = {"torch": torch.__version__, "cuda_build": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available()}
    if info["cuda_available"]:
        info["cudnn"] = torch.backends.cudnn.version()
        info["devices"] = [
            {"name": props.name, "capability": f"{props.major}.{props.minor}",
             "memory_gib": round(props.total_memory / 2**30, 1),
             "multiprocessors": props.multi_processor_count}
            for props in (torch.cuda.get_device_properties(i)
                          for i in range(torch.cuda.device_count()))]
        info["gpu"] = info["devices"][0]["name"]
    else:
        info["gpu"] = None
    return info


# ---------------------------------------------------------------------------------------
# Lockstep: two benchmark processes that take turns


TURN, DONE = b"T", b"D"
TURN_ENV = ("MLPROP_BENCH_TURN_MINE", "MLPROP_BENCH_TURN_OTHER", "MLPROP_BENCH_TURN_ROUNDS",
            "MLPROP_BENCH_TURN_CPU")


def benchmark_environment() -> dict[str, str]:
    """This process's environment for a benchmark run in a child pytest, without the
    variables of an enclosing pytest-xdist worker: pytest-benchmark reads
    ``PYTEST_XDIST_WORKER`` as "xdist is on" and disables every benchmark (with
    ``--benchmark-only``: a usage error), so ``mlprop bench`` run from inside an xdist
    worker (a user's test of their benchmarks under ``-n``) would measure nothing."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith("PYTEST_XDIST_") and name != "PYTEST_CURRENT_TEST"}


class Turns:
    """Strict alternation of timing rounds between two processes, through two FIFOs.

    One token travels between the processes: :meth:`wait` (the benchmark's untimed
    ``setup``) hands it to the other process if this one holds it, then blocks until it
    comes back, so exactly one of the two is ever timing and the rounds of BASE and HEAD
    alternate (ABAB...) within milliseconds of each other: both sides see the same load.
    :meth:`finish` (at the end of the session) tells the other to carry on alone.

    With ``cpu``, the first :meth:`wait` pins this thread to that CPU: both sides then time
    on the same core and share whatever else runs there, while their start-up still used
    every core.
    """

    def __init__(self, mine: str, other: str, rounds: int, cpu: int | None = None) -> None:
        self._mine = os.open(mine, os.O_RDWR)
        self._other = os.open(other, os.O_RDWR)
        self.rounds = rounds
        self.cpu = cpu
        self.holding = False
        self.alone = False

    def wait(self) -> None:
        if self.cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {self.cpu})
            self.cpu = None
        if self.alone:
            return
        if self.holding:
            os.write(self._other, TURN)
            self.holding = False
        if os.read(self._mine, 1) == DONE:
            self.alone = True
        else:
            self.holding = True

    def finish(self) -> None:
        if not self.alone:
            os.write(self._other, DONE)
            self.alone = True


class LayoutJitter:
    """Move the heap between timing rounds: each call allocates a buffer of a random size
    and frees the one allocated ``keep`` calls before.

    Measured here: the reference CNN's forward pass at batch 64 took 8 ms or 12 ms per call
    depending only on where its buffers landed; a process keeps one placement for its whole
    life, so two processes differ by 50% with no code change, and a change anywhere in the
    code (which shifts the heap) can move an untouched benchmark by 15%. Jitter makes every
    round draw a new placement. The sizes come from a fresh random seed in each process
    (``seed=None``): with one fixed sequence for both sides, identical code gets identical
    placements (an A/A comparison looks better than it is) and different code keeps one
    systematic offset (an untouched benchmark looked 15% slower in 6 jobs out of 7).
    """

    def __init__(self, seed: int | None = None, keep: int = 4,
                 max_bytes: int = 1 << 22) -> None:
        import random

        self._rng = random.Random(seed)  # None: seeded from os.urandom
        self._keep, self._max = keep, max_bytes
        self._ring: list[Any] = []

    def __call__(self) -> None:
        import torch

        self._ring.append(torch.empty(self._rng.randrange(1, self._max) // 4 + 1))
        if len(self._ring) > self._keep:
            self._ring.pop(0)


_TURNS: dict[str, Turns | None] = {}
_JITTER: dict[str, LayoutJitter] = {}


def current_turns() -> Turns | None:
    """This process's :class:`Turns` when ``mlprop bench compare`` started it, else None."""
    if "current" not in _TURNS:
        mine, other, rounds, cpu = (os.environ.get(name) for name in TURN_ENV)
        _TURNS["current"] = (Turns(mine, other, int(rounds or 60), int(cpu) if cpu else None)
                             if mine and other else None)
    return _TURNS["current"]

