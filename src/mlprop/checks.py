"""Assertion helpers for properties: failures that say what to fix.

A failing property raises :class:`PropertyViolation` (an ``AssertionError``, so pytest
reports it as a test failure) whose message names the invariant, the expected and the actual
value; :func:`reproduction` attaches a copy-pasteable reproduction as an exception note.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from mlprop.docs_links import property_url

CURRENT_SPEC: dict[str, str] = {"spec": "mlprop.digits:target"}
"""The spec of the target under test, set by the pytest plugin (used in reproductions)."""


class PropertyViolation(AssertionError):
    """A target broke an invariant: ``invariant`` expected ``expected``, got ``actual``."""

    def __init__(self, invariant: str, expected: str, actual: str) -> None:
        self.invariant, self.expected, self.actual = invariant, expected, actual
        super().__init__(f"{invariant}\n  expected: {expected}\n  actual:   {actual}")


def fail(invariant: str, expected: str, actual: str) -> NoReturn:
    raise PropertyViolation(invariant, expected, actual)


NOT_CHECKED_PREFIX = "mlprop: not checked: "
"""Start of the skip reason of a property that could not decide on the target."""


def not_checked(reason: str) -> NoReturn:
    """Stop this property without a verdict: it cannot decide on this target (no input its
    check applies to, a layer its method cannot handle, a statistical precondition unmet).

    Invariant: a property's own limits never fail a correct pipeline. The property is
    reported as skipped, and the end of the run (and the report) lists it under "not
    checked" with ``reason``, which should say what was missing and what would let it
    decide."""
    import pytest

    pytest.skip(f"{NOT_CHECKED_PREFIX}{reason}")


def is_not_checked(exc: BaseException) -> str | None:
    """The reason if ``exc`` is a :func:`not_checked` stop, else None."""
    message = str(getattr(exc, "msg", "") or "")
    if type(exc).__name__ == "Skipped" and message.startswith(NOT_CHECKED_PREFIX):
        return message.removeprefix(NOT_CHECKED_PREFIX)
    return None


def as_numpy(value: Any) -> np.ndarray:
    """An ndarray view of a NumPy array or a torch tensor (detached, on the CPU)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def as_tensor(value: Any):
    """A float32 torch tensor of a preprocessed batch (ndarray or tensor)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def describe_array(value: Any) -> str:
    """Shape, dtype and either the values (small arrays) or a digest (large ones)."""
    array = as_numpy(value)
    head = f"ndarray(shape={array.shape}, dtype={array.dtype}"
    if array.size <= 64:
        return f"{head}, values={array.tolist()})"
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:12]
    return f"{head}, min={array.min()}, max={array.max()}, sha256={digest}...)"


@functools.cache
def _suite_dir() -> Path | None:
    """The folder of the installed property suite (None when it cannot be imported)."""
    from mlprop.suite import SuiteNotFoundError, properties_dir

    try:
        return properties_dir().resolve()
    except SuiteNotFoundError:
        return None


def running_property() -> str | None:
    """The name of the suite's property whose code is running (the innermost frame of a
    ``test_*`` function defined in a file of mlprop's property suite), or None outside one.

    The reproduction note links to the property's reference entry with it, whether the
    property runs under pytest or under the fault sweep, and whether the ``with
    reproduction`` block is in the property or in a helper it calls. The file's folder is
    compared with the installed suite's, as the plugin's ``is_property`` does: a user's own
    ``properties/test_*.py`` never gets a link to mlprop's documentation."""
    suite = _suite_dir()
    if suite is None:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name.startswith("test_")
                and Path(frame.f_code.co_filename).resolve().parent == suite):
            return frame.f_code.co_name
        frame = frame.f_back
    return None


def reproduction_note(target: Any, **details: Any) -> str:
    """``Reproduce: target ...; key=value, ...`` (arrays described by
    :func:`describe_array`), and, inside one of the suite's properties, a second line
    ``reference: <url>`` to the property's entry in the documentation."""
    parts = []
    for key, value in details.items():
        shown = describe_array(value) if isinstance(value, np.ndarray) or hasattr(
            value, "detach") else repr(value)
        parts.append(f"{key}={shown}")
    note = (f"Reproduce: target {getattr(target, 'name', target)!r} "
            f"(--mlprop-target {CURRENT_SPEC['spec']}); " + ", ".join(parts))
    name = running_property()
    if name is not None:
        note += f"\nreference: {property_url(name)}"
    return note


@contextlib.contextmanager
def reproduction(target: Any, **details: Any) -> Iterator[None]:
    """On failure inside the block, add a note naming the target and the inputs."""
    try:
        yield
    except Exception as exc:
        exc.add_note(reproduction_note(target, **details))
        from mlprop.report.capture import attach_example  # for --mlprop-report

        attach_example(exc, details)
        raise


def assert_shape(actual: Any, expected: tuple[int, ...], what: str) -> None:
    shape = tuple(as_numpy(actual).shape)
    if shape != tuple(expected):
        fail(f"{what} has the wrong shape", str(tuple(expected)), str(shape))


def assert_dtype(actual: Any, expected: str, what: str) -> None:
    dtype = str(as_numpy(actual).dtype)
    if dtype != expected:
        fail(f"{what} has the wrong dtype", expected, dtype)


def assert_finite(actual: Any, what: str) -> None:
    array = as_numpy(actual)
    bad = array.size - int(np.isfinite(array).sum())
    if bad:
        fail(f"{what} must be finite", "no NaN or inf", f"{bad} of {array.size} values are not")


def assert_close(actual: Any, expected: Any, what: str, *, atol: float = 0.0,
                 rtol: float = 0.0) -> None:
    """Equal within tolerance (exactly equal by default), naming the worst element."""
    a, e = as_numpy(actual), as_numpy(expected)
    if a.shape != e.shape:
        fail(what, f"shape {e.shape}", f"shape {a.shape}")
    if a.size == 0:
        return
    if np.array_equal(a, e, equal_nan=False) and atol == 0.0 and rtol == 0.0:
        return
    with np.errstate(invalid="ignore"):
        excess = np.abs(a.astype(np.float64) - e.astype(np.float64)) - (
            atol + rtol * np.abs(e.astype(np.float64)))
    excess = np.where(np.isnan(excess), np.inf, excess)
    if (excess > 0).any() or (atol == 0.0 and rtol == 0.0 and not np.array_equal(a, e)):
        index = np.unravel_index(int(np.argmax(excess)), a.shape)
        count = int((excess > 0).sum()) if (excess > 0).any() else int((a != e).sum())
        fail(what, f"{e[index]!r} at index {tuple(int(i) for i in index)} (atol={atol}, "
                   f"rtol={rtol})", f"{a[index]!r}; {count} of {a.size} elements differ")


def requires(*fields: str) -> Any:
    """Mark a property (or a module, as ``pytestmark``) as needing these optional Target
    fields: the plugin skips it, and lists it as not checked, when the target leaves one
    out."""
    import pytest

    return pytest.mark.mlprop_requires(*fields)
