"""mlprop's Hypothesis settings, applied to mlprop's properties only.

Invariant: installing mlprop never changes the settings of a test that is not one of
mlprop's properties. The profiles here are plain :class:`hypothesis.settings` objects built
on Hypothesis's own ``default`` profile; they are never registered or loaded globally
(``settings.load_profile`` would change every Hypothesis test in the process: a user's
property tests silently losing 80 % of their examples in CI is the bug this prevents). The
pytest plugin puts them on mlprop's property functions one by one.

A property may declare an example cap with :func:`examples_at_most` (the costly ones: a
model built per example, SHAP explanations); its examples are then
``min(profile, cap)``, times the component's scale (``--mlprop-examples-scale``).

After a failure, a costly property (declared cost >= 2), and every property under the
``mlprop-ci`` and ``mlprop-mutmut`` profiles, skips Hypothesis's explain phase: it replays the
minimal failing example up to hundreds of times to annotate which arguments could vary, which
cost 39 s of a SHAP property's 45 s and 4.4 s of an augmentation property's 4.7 s before the
failure was reported. mlprop's failures name the expected and actual values and the
reproduction instead. A costly property (and every property under ``mlprop-mutmut``, where
only the verdict counts) also stops generating at its first failure instead of spending up to
10 s looking for a second, distinct bug.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from hypothesis import HealthCheck, Phase, settings

from mlprop.errors import MlpropError

__all__ = ["PROFILES", "ProfileError", "cost_of", "default_profile", "examples_at_most",
           "profile_name", "property_settings"]

_QUIET_CHECKS = (HealthCheck.too_slow, HealthCheck.data_too_large)

PROFILES: Mapping[str, Mapping[str, Any]] = {
    "mlprop-ci": {"derandomize": True, "deadline": None, "max_examples": 20,
                  "database": None, "print_blob": True},
    "mlprop-dev": {"deadline": None, "max_examples": 50},
    "mlprop-thorough": {"deadline": None, "max_examples": 500},
    "mlprop-mutmut": {"derandomize": True, "deadline": None, "max_examples": 10,
                      "database": None},
}
"""Name -> the settings it changes from Hypothesis's ``default`` profile."""

QUICK_VERDICT_PROFILES = frozenset({"mlprop-ci", "mlprop-mutmut"})
"""Profiles whose every property skips the explain phase (see the module docstring)."""

CAP_ATTRIBUTE = "_mlprop_max_examples"
COST_ATTRIBUTE = "_mlprop_cost"

F = TypeVar("F", bound=Callable[..., Any])


class ProfileError(MlpropError, ValueError):
    """An unknown profile name or a bad examples scale."""


def profile_name(name: str) -> str:
    """``ci`` or ``mlprop-ci`` -> ``mlprop-ci``; raises :class:`ProfileError` otherwise."""
    full = name if name.startswith("mlprop-") else f"mlprop-{name}"
    if full not in PROFILES:
        known = ", ".join(p.removeprefix("mlprop-") for p in PROFILES)
        raise ProfileError(f"mlprop profile: expected one of {known}, got {name!r}")
    return full


def default_profile(environ: Mapping[str, str]) -> tuple[str, str]:
    """``(profile, why)``: ``MLPROP_PROFILE``, else ``mlprop-mutmut`` under a mutation run,
    ``mlprop-ci`` when ``CI`` is set to a true value, else ``mlprop-dev``."""
    if environ.get("MLPROP_PROFILE"):
        return profile_name(environ["MLPROP_PROFILE"]), "MLPROP_PROFILE"
    if environ.get("MUTANT_UNDER_TEST"):
        return "mlprop-mutmut", "MUTANT_UNDER_TEST"
    if environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        return "mlprop-ci", "CI"
    return "mlprop-dev", "default"


def examples_at_most(count: int, *, cost: int = 2) -> Callable[[F], F]:
    """Decorator for a costly property: run at most ``count`` examples whatever the profile.

    ``cost`` ranks it within its component (1: cheap, the default of undecorated properties;
    2: costly; 3: the costliest, e.g. training loops): the plugin runs cheaper ones first."""
    if not isinstance(count, int) or count < 1:
        raise ProfileError(f"examples_at_most: expected a positive int, got {count!r}")

    def mark(test: F) -> F:
        setattr(test, CAP_ATTRIBUTE, count)
        setattr(test, COST_ATTRIBUTE, cost)
        return test

    return mark


def cost_of(test: Callable[..., Any]) -> int:
    """The declared cost rank of a property (1 when it declares none)."""
    return int(getattr(test, COST_ATTRIBUTE, 1))


def scaled_examples(base: int, scale: float) -> int:
    """``base`` examples times ``scale``, at least one."""
    return max(1, math.floor(base * scale + 0.5))


def property_settings(test: Callable[..., Any], profile: str, scale: float = 1.0,
                      **overrides: Any) -> settings:
    """The settings ``test`` (an mlprop property) runs with under ``profile``."""
    name = profile_name(profile)
    base = settings.get_profile("default")
    values = dict(PROFILES[name])
    cap = getattr(test, CAP_ATTRIBUTE, None)
    if cap is not None:
        values["max_examples"] = min(values["max_examples"], cap)
    values["max_examples"] = scaled_examples(values["max_examples"], scale)
    costly = cost_of(test) > 1
    if costly or name in QUICK_VERDICT_PROFILES:
        values["phases"] = tuple(phase for phase in base.phases if phase is not Phase.explain)
    if costly or name == "mlprop-mutmut":
        values["report_multiple_bugs"] = False
    values.update(overrides)
    return settings(base, suppress_health_check=_QUIET_CHECKS, **values)


def apply_settings(test: Callable[..., Any], chosen: settings) -> None:
    """Make the Hypothesis test ``test`` run with ``chosen`` (Hypothesis reads this
    attribute each time the test is called), and let no failing example keep its frames."""
    test._hypothesis_internal_use_settings = chosen  # type: ignore[attr-defined]
    release_frames_on_failure(test)


def _clear_frames(tb: Any) -> None:
    """Drop the locals of every finished frame in ``tb``: the fast locals (``frame.clear``)
    and the ``locals()`` snapshot dict, which pytest's rewritten asserts create and which
    ``frame.clear`` leaves alone on Python 3.11."""
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_flags & 0x20 == 0:  # not a generator/coroutine frame
            try:
                frame.clear()
            except RuntimeError:  # still executing (our own wrapper)
                pass
            else:
                frame.f_locals.clear()
        tb = tb.tb_next


EXAMPLE_PRINT_THRESHOLD = 64
"""Arrays drawn by a property print in full up to this many values, else summarised (NumPy's
``...``): a 16x16x3 image printed whole made one failure 1,100 lines long, twice (the
reproduction note gives the shape, the range and a digest of the exact bytes)."""


def release_frames_on_failure(test: Callable[..., Any]) -> None:
    """Clear the local variables of every finished frame of a failing example's traceback,
    and print drawn arrays summarised (:data:`EXAMPLE_PRINT_THRESHOLD`).

    Invariant: memory does not grow with shrink steps. While Hypothesis shrinks a failure it
    keeps each failing run's traceback, and the frames keep their locals (a model, its
    gradients, activations) alive until the test ends: 85 MB per step with an 11 M-parameter
    CNN. The messages, notes and line numbers stay; only the locals go."""
    handle = getattr(test, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None or getattr(inner, "_mlprop_releases_frames", False):
        return

    @functools.wraps(inner)
    def run_example(*args: Any, **kwargs: Any) -> Any:
        try:
            with np.printoptions(threshold=EXAMPLE_PRINT_THRESHOLD, edgeitems=3):
                return inner(*args, **kwargs)
        except BaseException as exc:
            for failure in (exc, exc.__cause__, exc.__context__):
                if failure is not None:
                    _clear_frames(failure.__traceback__)
            raise

    run_example._mlprop_releases_frames = True  # type: ignore[attr-defined]
    handle.inner_test = run_example
