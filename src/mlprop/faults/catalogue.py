"""The catalogue of realistic ML faults: :class:`Fault` and the registry.

Each :class:`Fault` takes a *correct* target and returns a faulty one (``Target.replace``
with one faulty component) and names the properties expected to catch it. The faults are
written against the target contract only, so they apply to any target; the catalogue check
(``tests/test_fault_catalogue.py``) runs each fault against the properties it names, and
``mlprop faults`` sweeps every fault against the whole suite to build the kill matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from mlprop.target import Target


@dataclass(frozen=True)
class Fault:
    """A named bug: ``inject(target)`` returns the target with the bug planted."""

    name: str
    component: str
    description: str
    catches: tuple[str, ...]
    inject: Callable[[Target], Target]
    applies: Callable[[Target], bool] = lambda target: True
    """Whether the bug can exist in ``target`` at all (a BGR/RGB swap needs colour): the
    catalogue check and the sweep leave a fault out where it does not apply."""
    catches_on: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}))
    """Per target name, the properties that catch the fault there when they differ from
    ``catches`` (the same bug shows through another invariant in a colour pipeline)."""

    def catches_for(self, target: Target | str) -> tuple[str, ...]:
        """The properties expected to catch this fault in ``target`` (or a target name)."""
        name = target if isinstance(target, str) else target.name
        return self.catches_on.get(name, self.catches)

    @property
    def every_catch(self) -> tuple[str, ...]:
        """Every property named for this fault on any target, ``catches`` first."""
        found = list(self.catches)
        for names in self.catches_on.values():
            found += [name for name in names if name not in found]
        return tuple(found)


CATALOGUE: dict[str, Fault] = {}


def fault(component: str, *catches: str, applies: Callable[[Target], bool] | None = None,
          catches_on: Mapping[str, Sequence[str]] | None = None,
          ) -> Callable[[Callable[[Target], Target]], Fault]:
    """Register ``fn`` as a fault; its docstring is the description. ``applies`` says which
    targets it can be planted in (default: every target); ``catches_on`` maps a target name
    to the properties that catch it there instead of ``catches``."""

    def register(inject: Callable[[Target], Target]) -> Fault:
        entry = Fault(inject.__name__, component, (inject.__doc__ or "").strip(), catches,
                      inject, applies if applies is not None else Fault.applies,
                      MappingProxyType({name: tuple(props) for name, props in
                                        (catches_on or {}).items()}))
        if entry.name in CATALOGUE:
            raise ValueError(f"duplicate fault name {entry.name!r}")
        CATALOGUE[entry.name] = entry
        return entry

    return register
