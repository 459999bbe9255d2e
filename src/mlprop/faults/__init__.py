"""The catalogue of realistic ML faults, one module per component of the target contract.

Each :class:`Fault` takes a *correct* target and returns a faulty one (``Target.replace`` with
one faulty component) and names the properties expected to catch it. The faults are written
against the target contract only, so they apply to any target. Used by the audit (its ML
mutants name the faults of their kind), the report, ``mlprop faults`` (the kill matrix,
:mod:`mlprop.faults.sweep`) and the catalogue check (``tests/test_fault_catalogue.py``).

Importing the package registers every fault, in the order of the modules below (the order
of the kill matrix's rows).
"""

import importlib

from mlprop.faults.catalogue import CATALOGUE, Fault, fault

__all__ = ["CATALOGUE", "COMPONENT_MODULES", "Fault", "fault"]

COMPONENT_MODULES = ("preprocess", "augment", "model", "serve", "trained_model", "colour",
                     "training")
"""The modules that register faults, in the order of the catalogue (and the kill matrix)."""

for _module in COMPONENT_MODULES:
    importlib.import_module(f"mlprop.faults.{_module}")
