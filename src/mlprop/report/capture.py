"""What a failed property leaves behind, turned into report data (no rerun).

The failure pytest sees is the exception of Hypothesis's final replay of the shrunk example.
:func:`mlprop.checks.reproduction` calls :func:`attach_example` on it while the property's
frames are still intact (they are cleared afterwards so that shrinking never holds models):
it keeps references to the example's inputs, the two arrays an ``assert_close`` compared
and drawable array locals of the helpers that failed, and only for the final replay:
earlier shrink steps attach nothing, so memory does not grow with them.
:func:`describe_failure` draws those arrays into PNGs and keeps only the PNGs and short
texts.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from mlprop.report import images as draw

__all__ = ["attach_example", "describe_failure", "example_summary", "hypothesis_counts",
           "leaf_exceptions"]

MAX_ARRAY_BYTES = 64 * 2**20
"""A captured array larger than this is described, not drawn."""
BLOB = re.compile(r"@reproduce_failure\([^)]*\)")


def leaf_exceptions(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` itself, or every exception inside an ``ExceptionGroup`` (Hypothesis raises
    one when it found several distinct failures)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaf_exceptions(inner)
    else:
        yield exc


def _numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        try:
            return value.detach().cpu().numpy()
        except Exception:
            return None
    return None


def _short(value: Any, limit: int = 200) -> str:
    array = _numpy(value)
    if array is not None:
        return f"array(shape={tuple(array.shape)}, dtype={array.dtype})"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def example_summary(details: Mapping[str, Any]) -> dict[str, str]:
    """The example's inputs as short texts (arrays by shape and dtype)."""
    return {str(key): _short(value) for key, value in details.items()}


def _frames(exc: BaseException) -> Iterator[types.FrameType]:
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _is_final_replay() -> bool:
    """False while Hypothesis generates or shrinks; True in its final replay of the
    minimal example, and outside Hypothesis."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:  # no build context: a plain call
        return True


def attach_example(exc: BaseException, details: Mapping[str, Any]) -> None:
    """Give ``exc`` the arrays a report draws (``mlprop_example``, ``mlprop_compared``,
    ``mlprop_locals``: references, no copies), in the final replay only."""
    if not _is_final_replay() or hasattr(exc, "mlprop_example"):
        return
    try:
        exc.mlprop_example = dict(details)
        exc.mlprop_compared = _compared(exc)
        exc.mlprop_locals = _finished_locals(exc)
    except Exception:  # an exception type without a __dict__: nothing to draw
        pass


def _finished_locals(exc: BaseException) -> dict[str, np.ndarray]:
    """Drawable array locals of the helper frames that raised ``exc`` below the property
    (finished frames only: reading the locals of the still-executing property frame, which
    is cleared right afterwards, crashed CPython 3.11's garbage collector)."""
    frames = list(_frames(exc))
    found: dict[str, np.ndarray] = {}
    for frame in frames[2:]:  # the reproduction generator and the property still run
        code = frame.f_code
        if code.co_filename.endswith(("checks.py", "contextlib.py")):
            continue
        for name, value in frame.f_locals.items():
            array = _numpy(value)
            if array is not None and name not in found and draw.is_drawable(array) \
                    and _fits(array):
                found[name] = array
    return found


def _compared(exc: BaseException) -> tuple[np.ndarray, np.ndarray] | None:
    """``(actual, expected)`` of the ``assert_close`` that raised ``exc``, if one did."""
    for frame in _frames(exc):
        code = frame.f_code
        if code.co_name == "assert_close" and code.co_filename.endswith("checks.py"):
            actual, expected = (_numpy(frame.f_locals.get(name)) for name in
                                ("actual", "expected"))
            if actual is None or expected is None:
                actual = np.asarray(frame.f_locals.get("a"))
                expected = np.asarray(frame.f_locals.get("e"))
            return actual, expected
    return None


def _fits(array: np.ndarray) -> bool:
    return array.nbytes <= MAX_ARRAY_BYTES


def _figure(title: str, png: bytes, caption: str = "") -> dict[str, str]:
    return {"title": title, "uri": draw.png_data_uri(png), "caption": caption}


def _shape_caption(array: np.ndarray) -> str:
    drawn = min(len(draw.as_images(array)), draw.MAX_IMAGES)
    total = len(draw.as_images(array))
    more = f", first {drawn} of {total} drawn" if total > drawn else ""
    return f"shape {tuple(array.shape)}, {array.dtype}{more}"


def _pair_figures(first: tuple[str, np.ndarray], second: tuple[str, np.ndarray],
                  signed: bool) -> list[dict[str, str]]:
    (name_a, a), (name_b, b) = first, second
    if not (draw.is_drawable(a) and draw.is_drawable(b) and _fits(a) and _fits(b)):
        return []
    figures = []
    if signed:
        for name, array in ((name_a, a), (name_b, b)):
            figures.append(_figure(name, draw.heatmap_png(array, diverging=True),
                                   _shape_caption(array) + "; red > 0 > blue"))
    else:
        both = np.concatenate([np.asarray(a, np.float64).ravel(),
                               np.asarray(b, np.float64).ravel()])
        both = both[np.isfinite(both)]
        same_range = (a.dtype == np.uint8 and b.dtype == np.uint8) or both.size == 0
        low = None if same_range else float(both.min())
        high = None if same_range else float(both.max())
        for name, array in ((name_a, a), (name_b, b)):
            figures.append(_figure(name, draw.images_png(array, low=low, high=high),
                                   _shape_caption(array)))
    diff = draw.difference(a, b)
    if diff is not None:
        figures.append(_figure(f"|{name_a} - {name_b}|", draw.heatmap_png(diff),
                               f"max {float(np.nanmax(diff)) if diff.size else 0:.4g}, "
                               f"{int((diff > 0).sum())} of {diff.size} values differ"))
    return figures


def describe_failure(exc: BaseException, *, component: str) -> dict[str, Any]:
    """Report data of one failure: message, notes, ``@reproduce_failure`` blob, the
    example's inputs (texts) and figures (PNG data URIs)."""
    leaves = list(leaf_exceptions(exc))
    main = next((e for e in leaves if hasattr(e, "mlprop_example")), leaves[0])
    notes = [str(note) for e in leaves for note in getattr(e, "__notes__", ())]
    blob = next((m.group(0) for note in notes for m in [BLOB.search(note)] if m), None)
    details = getattr(main, "mlprop_example", None) or {}
    figures: list[dict[str, str]] = []
    try:
        figures = _figures(main, details, component)
    except Exception as problem:  # a report must never hide the failure it reports
        figures = [{"title": "figures unavailable", "uri": "",
                    "caption": f"{type(problem).__name__}: {problem}"}]
    return {
        "exception": type(main).__name__,
        "message": str(main),
        "notes": notes,
        "distinct_failures": len(leaves),
        "blob": blob,
        "example": example_summary(details),
        "figures": figures,
    }


def _figures(exc: BaseException, details: Mapping[str, Any], component: str
             ) -> list[dict[str, str]]:
    figures = []
    inputs = {str(k): a for k, v in details.items()
              if (a := _numpy(v)) is not None and draw.is_drawable(a) and _fits(a)}
    for name, array in inputs.items():
        figures.append(_figure(f"input: {name}", draw.images_png(array),
                               _shape_caption(array)))
    signed = component == "attribution"
    pair = getattr(exc, "mlprop_compared", None)
    if pair is not None:
        figures += _pair_figures(("actual", pair[0]), ("expected", pair[1]), signed)
        return figures
    local = {name: array for name, array in getattr(exc, "mlprop_locals", {}).items()
             if not any(array is a for a in inputs.values())}
    seen = list(local.items())
    for index, (name_a, a) in enumerate(seen):
        for name_b, b in seen[index + 1:]:
            if a.shape == b.shape:
                return figures + _pair_figures((name_a, a), (name_b, b), signed)
    for name, array in seen[:2]:
        if _fits(array):
            figures.append(_figure(name, draw.images_png(array), _shape_caption(array)))
    return figures


def hypothesis_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """Examples tried (explicit, reuse and generate phases) and shrink steps, from the
    statistics Hypothesis hands its ``collector``."""
    def cases(phase: str) -> list[Mapping[str, Any]]:
        return list(stats.get(f"{phase}-phase", {}).get("test-cases", []))

    tried = cases("explicit") + cases("reuse") + cases("generate")
    return {"examples": sum(1 for c in tried if c.get("status") in ("valid", "interesting")),
            "invalid": sum(1 for c in tried if c.get("status") in ("invalid", "overrun")),
            "shrinks": len(cases("shrink"))}
