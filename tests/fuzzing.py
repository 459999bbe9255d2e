"""Shared pieces of the fuzz suite (``tests/test_fuzz_*.py``): budget, mutations, the oracle.

The oracle (:func:`check_reader`): a reader given any bytes either returns a result or
raises an :class:`~mlprop.errors.MlpropError` whose message names the file; any other
exception fails the test. Its traced peak memory (``tracemalloc``: Python objects and numpy
buffers) stays under ``max(FLOOR_BYTES, factor x file size)``, i.e. no reader allocates what
a header merely claims.

Budget: ``MLPROP_FUZZ_EXAMPLES`` examples per input boundary (default 100, 10 under a
mutation run), split between the tests of that boundary. A thorough run::

    MLPROP_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/test_fuzz_*.py -q -p no:cacheprovider

``MLPROP_FUZZ_REPORT=FILE`` writes, at exit, per boundary: examples run, outcomes
(valid / error, by exception type) and the largest peak memory and file size seen.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import tempfile
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mlprop.errors import MlpropError

FLOOR_BYTES = 2 << 20
"""Peak memory every reader may use whatever the file's size (imports, small buffers)."""


def budget(tests_in_boundary: int = 1) -> int:
    """Examples for one test of a boundary with ``tests_in_boundary`` tests."""
    default = "10" if os.environ.get("MUTANT_UNDER_TEST") else "100"
    total = int(os.environ.get("MLPROP_FUZZ_EXAMPLES") or default)
    return max(1, total // tests_in_boundary)


def fuzz_settings(tests_in_boundary: int = 1) -> settings:
    """The profile in use, with this boundary's share of the budget and no deadline."""
    return settings(max_examples=budget(tests_in_boundary), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


WORKDIR = Path(tempfile.mkdtemp(prefix="mlprop-fuzz-"))


# --------------------------------------------------------------------------- mutations


@st.composite
def mutations(draw: st.DrawFn, seed: bytes, header: int = 64) -> bytes:
    """``seed`` after 1-3 edits: flipped bits, truncation, an overwritten header field,
    inserted or appended bytes, a deleted range; or, sometimes, random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2 * len(seed) + 16))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "field", "insert", "append",
                                     "delete"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[position:]
        elif kind == "field":  # overwrite bytes where headers live
            start = draw(st.integers(0, min(header, max(len(data) - 1, 0))))
            value = draw(st.sampled_from([b"\x00", b"\xff", b"\x7f\xff\xff\xff",
                                          b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"])
                         | st.binary(min_size=1, max_size=8))
            data[start:start + len(value)] = value
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete" and data:
            del data[position:position + draw(st.integers(1, 16))]
    return bytes(data)


# --------------------------------------------------------------------------- the oracle

STATS: dict[str, dict[str, Any]] = defaultdict(
    lambda: {"examples": 0, "outcomes": Counter(), "peak_bytes": 0, "max_file_bytes": 0})


def check_reader(boundary: str, read: Callable[[Path], Any], path: Path, *,
                 factor: int = 8, names: str | None = None) -> Any:
    """Run ``read(path)`` under the oracle; return its result, or None after an error.

    ``names``: text the error message must contain (default: the path).
    """
    size = path.stat().st_size if path.exists() else 0
    # an untraced call first: lazy imports inside the readers (PIL's plugins and decoders
    # for a mode seen for the first time) allocate megabytes once per process, which is not
    # the reader's memory and made the traced peak depend on test order (a flaky failure)
    with contextlib.suppress(MlpropError):
        read(path)
    tracemalloc.start()
    try:
        result = read(path)
        outcome = "valid"
    except MlpropError as exc:
        message = str(exc)
        assert (names or str(path)) in message, f"error does not name the file: {message!r}"
        result, outcome = None, f"error: {type(exc).__name__}"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    limit = max(FLOOR_BYTES, factor * size)
    assert peak <= limit, f"{boundary}: peak {peak} bytes for a {size}-byte file (> {limit})"
    stats = STATS[boundary]
    stats["examples"] += 1
    stats["outcomes"][outcome] += 1
    stats["peak_bytes"] = max(stats["peak_bytes"], peak)
    stats["max_file_bytes"] = max(stats["max_file_bytes"], size)
    return result


def _write_report() -> None:
    target = os.environ.get("MLPROP_FUZZ_REPORT")
    if target and STATS:
        existing = {}
        if Path(target).is_file():
            existing = json.loads(Path(target).read_text())
        for boundary, stats in STATS.items():
            old = existing.get(boundary, {"examples": 0, "outcomes": {}, "peak_bytes": 0,
                                          "max_file_bytes": 0})
            outcomes = Counter(old["outcomes"]) + stats["outcomes"]
            existing[boundary] = {
                "examples": old["examples"] + stats["examples"], "outcomes": dict(outcomes),
                "peak_bytes": max(old["peak_bytes"], stats["peak_bytes"]),
                "max_file_bytes": max(old["max_file_bytes"], stats["max_file_bytes"])}
        Path(target).write_text(json.dumps(existing, indent=2, sort_keys=True))


atexit.register(_write_report)
