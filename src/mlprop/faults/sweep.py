"""Run properties directly (outside pytest) against faulty targets: the kill matrix.

A property is a Hypothesis test function taking ``target`` (and ``augmentation_name`` when
it checks each augmentation). Calling it with a target runs its whole Hypothesis search;
an exception means the property caught the fault. Shrinking is switched off here: only
the verdict matters, not the smallest example.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import Phase, settings

from mlprop.checks import is_not_checked
from mlprop.faults import CATALOGUE, Fault
from mlprop.profiles import apply_settings, property_settings
from mlprop.target import REQUIRES_MARK, Target, fields_left_out

Property = Callable[..., None]


def load_properties(directory: str | Path | None = None) -> dict[str, Property]:
    """Every ``test_*`` function of every ``test_*.py`` module of the suite, by name:
    :mod:`mlprop.properties` (``directory`` must be that package's directory if given)."""
    import mlprop.properties

    package_dir = Path(mlprop.properties.__file__).resolve().parent
    if directory is not None and Path(directory).resolve() != package_dir:
        raise ValueError(f"load_properties: the suite is the package mlprop.properties "
                         f"({package_dir}), not {directory}")
    found: dict[str, Property] = {}
    for path in sorted(package_dir.glob("test_*.py")):
        module = importlib.import_module(f"mlprop.properties.{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value):
                if name in found:
                    raise ValueError(f"property {name!r} is defined twice")
                found[name] = value
    return found


SWEEP_PROFILE = "mlprop-ci"
"""The sweep's settings: derandomized, no database (the kill matrix is reproducible)."""


def _without_shrinking(prop: Property, max_examples: int | None) -> Property:
    """``prop`` with the sweep's settings: the CI profile and the property's own cap, no
    shrinking (only the verdict matters), ``max_examples`` as a further cap."""
    chosen = property_settings(prop, SWEEP_PROFILE, phases=(Phase.explicit, Phase.generate),
                               report_multiple_bugs=False, print_blob=False)
    if max_examples is not None:
        chosen = settings(chosen, max_examples=min(chosen.max_examples, max_examples))
    apply_settings(prop, chosen)
    return prop


@dataclass(frozen=True)
class Outcome:
    """One property on one target: ``status`` is "passed", "failed" or "not checked";
    ``message`` the first line of the failure, or why it could not decide."""

    status: str
    message: str = ""


def missing_fields(prop: Property, target: Target) -> list[str]:
    """The optional Target fields ``prop`` declares it needs (``requires`` on the function or
    its module's ``pytestmark``) that ``target`` leaves out: what the pytest plugin skips."""
    module = importlib.import_module(prop.__module__)
    marks = [*getattr(prop, "pytestmark", []), *(
        module_marks if isinstance(module_marks := getattr(module, "pytestmark", []), list)
        else [module_marks])]
    needed = [field_name for mark in marks if getattr(mark, "name", "") == REQUIRES_MARK
              for field_name in mark.args]
    if "augmentation_name" in _parameters(prop):
        needed.append("augmentations")
    return fields_left_out(needed, target)


def property_outcome(prop: Property, target: Target,
                     max_examples: int | None = None) -> Outcome:
    """Run ``prop`` against ``target`` (every augmentation for a per-augmentation property):
    failed at the first failure; not checked when it could not decide on any of them, or when
    the target leaves out a field it needs (as the pytest plugin skips it)."""
    import pytest

    missing = missing_fields(prop, target)
    if missing:
        return Outcome("not checked", "the target has no " + ", ".join(
            f"Target.{name}" for name in missing))
    prop = _without_shrinking(prop, max_examples)
    takes_augmentation = "augmentation_name" in _parameters(prop)
    calls = ([{"augmentation_name": name} for name in sorted(target.augmentations)]
             if takes_augmentation else [{}])
    undecided = []
    for extra in calls:
        where = f"[{extra['augmentation_name']}] " if extra else ""
        try:
            prop(target=target, **extra)
        except pytest.skip.Exception as exc:  # not checked: no verdict, so not a catch
            undecided.append(f"{where}{is_not_checked(exc) or exc}")
        except Exception as exc:  # any failure, including a crash, is a catch
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return Outcome("failed", f"{where}{type(exc).__name__}: {first}")
    if undecided and len(undecided) == len(calls):
        return Outcome("not checked", "; ".join(undecided))
    return Outcome("passed")


def run_property(prop: Property, target: Target, max_examples: int | None = None) -> str | None:
    """None if ``prop`` holds for ``target`` (or cannot decide on it), else the first line
    of its failure.

    ``max_examples`` caps the Hypothesis examples (the full sweep trades depth for time)."""
    outcome = property_outcome(prop, target, max_examples)
    return outcome.message if outcome.status == "failed" else None


def _parameters(prop: Property) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(prop).parameters)
    except (TypeError, ValueError):
        return ()


@dataclass
class FaultResult:
    fault: Fault
    caught_by: dict[str, str] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    expected: tuple[str, ...] | None = None
    """The properties the fault names for the target it ran in (default: ``catches``)."""

    @property
    def expected_catches(self) -> tuple[str, ...]:
        return self.fault.catches if self.expected is None else self.expected

    @property
    def expected_missed(self) -> list[str]:
        """Properties the fault names that did not catch it."""
        return [name for name in self.expected_catches if name not in self.caught_by]

    def as_dict(self) -> dict[str, object]:
        """The JSON row of ``mlprop faults --json``."""
        return {"fault": self.fault.name, "component": self.fault.component,
                "description": self.fault.description,
                "expected": list(self.expected_catches),
                "caught_by": self.caught_by, "missed": self.missed, "seconds": self.seconds}


def run_fault(fault: Fault, target: Target, properties: Mapping[str, Property],
              only: Iterable[str] | None = None,
              max_examples: int | None = None) -> FaultResult:
    """Run the properties (all, or ``only``) against ``fault.inject(target)``."""
    started = time.perf_counter()
    faulty = fault.inject(target)
    result = FaultResult(fault, expected=fault.catches_for(target))
    for name in (list(only) if only is not None else list(properties)):
        if name not in properties:
            raise KeyError(f"fault {fault.name!r} names unknown property {name!r}")
        message = run_property(properties[name], faulty, max_examples)
        if message is None:
            result.missed.append(name)
        else:
            result.caught_by[name] = message
    result.seconds = time.perf_counter() - started
    return result


def sweep(target: Target, properties: Mapping[str, Property],
          faults: Iterable[Fault] | None = None,
          progress: Callable[[FaultResult], None] | None = None,
          max_examples: int | None = None) -> list[FaultResult]:
    """Every fault that applies to ``target`` against every property: the rows of the kill
    matrix (a fault whose ``applies(target)`` is false, a BGR swap in a grayscale pipeline,
    has no row)."""
    results = []
    for fault in (faults if faults is not None else CATALOGUE.values()):
        if not fault.applies(target):
            continue
        result = run_fault(fault, target, properties, max_examples=max_examples)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def format_matrix(results: list[FaultResult], properties: Iterable[str]) -> str:
    """Plain text: one row per fault with the properties that caught it, then the
    properties that caught nothing."""
    lines = []
    kills: dict[str, int] = {name: 0 for name in properties}
    for result in results:
        for name in result.caught_by:
            kills[name] = kills.get(name, 0) + 1
        status = "CAUGHT" if result.caught_by else "MISSED"
        lines.append(f"{status:6} {result.fault.name} ({result.seconds:.1f}s)")
        for name in sorted(result.caught_by):
            mark = "*" if name in result.expected_catches else " "
            lines.append(f"    {mark} {name}")
        for name in result.expected_missed:
            lines.append(f"    ! expected {name} to catch it, it did not")
    lines.append("")
    lines.append("property -> number of faults it catches (* = named in the catalogue)")
    for name, count in sorted(kills.items(), key=lambda item: (item[1], item[0])):
        lines.append(f"  {count:3d}  {name}")
    return "\n".join(lines)
