"""pytest plugin: the target under test, mlprop's Hypothesis settings, the suite's order.

Target resolution order (DESIGN.md): ``--mlprop-target`` > ``$MLPROP_TARGET`` >
``[tool.mlprop] target`` in the pyproject.toml of the directory pytest runs from >
``mlprop.digits:target``. The ``target`` fixture yields it; the header names it, where it
came from, the mlprop profile and the mlprop version.

Being a good guest: the plugin never loads a Hypothesis profile. mlprop's properties (the
test functions of :mod:`mlprop.properties`) get their settings one by one
(:mod:`mlprop.profiles`); every other Hypothesis test in the run keeps the user's settings,
``--hypothesis-profile`` included.

Properties run component by component along the data flow (preprocess, augment, model,
training, predict, metamorphic, attribution), so the cheap properties that most bugs trip report
first. Each property item carries the markers ``mlprop`` and ``mlprop_<component>``
(``-m mlprop_preprocess``) and ``--mlprop-components`` selects components. A property that
needs a Target field the target leaves out (no augmentations, no trained model yet) is
skipped, and the end of the run lists what was not checked and which field enables it.
A property that runs but cannot decide on the target (:func:`mlprop.checks.not_checked`: no
input its check applies to, a layer its method cannot handle) is skipped too, and listed
there with its reason. A target's ``expected_failed_checks`` turn the named properties into
strict xfails; a declaration that names no collected property is reported at the end of the
run. Each property that failed is listed there too, under "mlprop: likely causes", with the
faults of mlprop's catalogue it is known to catch (with or without ``--mlprop-report``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlprop import __version__
from mlprop.checks import CURRENT_SPEC, NOT_CHECKED_PREFIX
from mlprop.config import COMPONENTS, ProjectConfig, read_config
from mlprop.errors import MlpropError
from mlprop.profiles import (
    apply_settings,
    cost_of,
    default_profile,
    profile_name,
    property_settings,
)
from mlprop.suite import SUITE_PACKAGE
from mlprop.target import OPTIONAL_FIELDS, REQUIRES_MARK, Target, fields_left_out, load_target

DEFAULT_TARGET = "mlprop.digits:target"
SKIP_PREFIX = "mlprop: the target leaves out "
@functools.cache
def properties_dir() -> Path:
    """The directory of the installed property suite (``mlprop.properties``)."""
    from mlprop import suite

    return suite.properties_dir()


def resolve_target_spec(option: str | None, environ: Mapping[str, str],
                        directory: Path, config: ProjectConfig | None = None
                        ) -> tuple[str, str]:
    """Return ``(spec, where_it_came_from)`` following the documented order."""
    if option:
        return option, "--mlprop-target"
    if environ.get("MLPROP_TARGET"):
        return environ["MLPROP_TARGET"], "MLPROP_TARGET"
    config = config if config is not None else read_config(directory)
    if config.get("target"):
        return config.get("target"), f"[tool.mlprop] in {config.path}"
    return DEFAULT_TARGET, "default"


def parse_scale(text: str | float | Mapping[str, float]) -> dict[str, float]:
    """``0.5`` (every component) or ``model=0.25,attribution=0.5`` -> ``{component: scale}``."""
    def number(value: Any, where: str) -> float:
        try:
            scale = float(value)
        except (TypeError, ValueError):
            raise MlpropError(f"{where}: expected a number > 0, got {value!r}") from None
        if not 0 < scale <= 100:
            raise MlpropError(f"{where}: expected a number in (0, 100], got {value!r}")
        return scale

    if isinstance(text, Mapping):
        pairs = list(text.items())
    elif isinstance(text, int | float) or "=" not in str(text):
        return dict.fromkeys(COMPONENTS, number(text, "examples scale"))
    else:
        pairs = [part.split("=", 1) for part in str(text).split(",") if part.strip()]
    scales = dict.fromkeys(COMPONENTS, 1.0)
    for name, value in pairs:
        name = str(name).strip()
        if name not in COMPONENTS:
            raise MlpropError(f"examples scale: unknown component {name!r} (known: "
                              f"{', '.join(COMPONENTS)})")
        scales[name] = number(value, f"examples scale of {name}")
    return scales


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``: this run is shard 2 of 4."""
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise MlpropError(f"--mlprop-shard: expected K/N (e.g. 1/4), got {text!r}") from None
    if not 1 <= index <= count:
        raise MlpropError(f"--mlprop-shard: expected 1 <= K <= N, got {text!r}")
    return index, count


@dataclass
class Session:
    """What the plugin decided for this pytest run."""

    spec: str
    source: str
    profile: str
    profile_source: str
    config: ProjectConfig
    components: tuple[str, ...] = COMPONENTS
    scales: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 1.0))
    shard: tuple[int, int] | None = None
    not_checked: dict[str, list[str]] = field(default_factory=dict)
    undecided: dict[str, str] = field(default_factory=dict)
    """Properties that ran but could not decide on the target (test id -> why)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Properties that failed (test id -> property name), for their likely causes."""
    unmatched: list[str] = field(default_factory=list)
    unknown_thresholds: list[str] = field(default_factory=list)
    """Names in the target's ``thresholds`` that no property reads (a typo, a renamed one)."""
    properties: int = 0


_SESSION = pytest.StashKey[Session]()
_TARGET = pytest.StashKey[Target]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlprop")
    group.addoption("--mlprop-target", default=None, metavar="MODULE:ATTR",
                    help="the Target the property suite checks (default: $MLPROP_TARGET, "
                         "[tool.mlprop] target, then mlprop.digits:target)")
    group.addoption("--mlprop-profile", default=None, metavar="NAME",
                    help="settings of mlprop's properties: ci, dev, thorough or mutmut "
                         "(default: $MLPROP_PROFILE, [tool.mlprop] profile, ci under CI=true, "
                         "else dev); never changes other Hypothesis tests")
    group.addoption("--mlprop-components", default=None, metavar="LIST",
                    help="run only these components of the suite (comma-separated: "
                         + ", ".join(COMPONENTS) + ")")
    group.addoption("--mlprop-examples-scale", default=None, metavar="SCALE",
                    help="scale the examples of mlprop's properties: a number (every "
                         "component) or component=number,... (e.g. model=0.25)")
    group.addoption("--mlprop-shard", default=None, metavar="K/N",
                    help="run only shard K of N of mlprop's properties (split by property; "
                         "the N shards together are exactly the suite)")


def _choose_profile(option: str | None, config: ProjectConfig) -> tuple[str, str]:
    if option:
        return profile_name(option), "--mlprop-profile"
    if os.environ.get("MLPROP_PROFILE") or os.environ.get("MUTANT_UNDER_TEST"):
        return default_profile(os.environ)
    if config.get("profile"):
        return profile_name(config.get("profile")), "[tool.mlprop] profile"
    return default_profile(os.environ)


def mutmut_import_problem(cwd: Path, package_file: str | None = None) -> str | None:
    """Why this run would test the wrong code, or None.

    Under mutmut (run from its ``mutants/`` copy) ``mlprop`` must be imported from
    ``mutants/src``: an installed or editable copy found first would run the unmutated code
    and every mutant would look like a survivor."""
    mutated = cwd / "src" / "mlprop"
    if cwd.name != "mutants" or not mutated.is_dir():
        return None
    if package_file is None:
        import mlprop

        package_file = mlprop.__file__
    where = Path(package_file).resolve()
    if mutated.resolve() in where.parents:
        return None
    return (f"mlprop: under mutmut the package must come from {mutated}, but it was imported "
            f"from {where.parent} (an installed copy shadows mutants/src: check PYTHONPATH)")


def _session_from(config: pytest.Config) -> Session:
    directory = Path(config.invocation_params.dir)
    project = read_config(directory)
    spec, source = resolve_target_spec(config.getoption("--mlprop-target"), os.environ,
                                       directory, project)
    profile, profile_source = _choose_profile(config.getoption("--mlprop-profile"), project)
    chosen = config.getoption("--mlprop-components")
    if chosen:
        components = tuple(part.strip() for part in chosen.split(",") if part.strip())
        unknown = [c for c in components if c not in COMPONENTS]
        if unknown:
            raise MlpropError(f"--mlprop-components: unknown {unknown} (known: "
                              f"{', '.join(COMPONENTS)})")
    else:
        components = tuple(project.get("components") or COMPONENTS)
    scale = config.getoption("--mlprop-examples-scale")
    if scale is None:
        scale = project.get("examples_scale")
    scales = parse_scale(scale) if scale is not None else dict.fromkeys(COMPONENTS, 1.0)
    return Session(spec, source, profile, profile_source, project, components, scales,
                   parse_shard(config.getoption("--mlprop-shard")))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MUTANT_UNDER_TEST"):
        problem = mutmut_import_problem(Path.cwd())
        if problem:
            raise pytest.UsageError(problem)
        try:  # forked mutmut children deadlock in GNU OpenMP after multi-threaded ops
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
    try:
        session = _session_from(config)
    except MlpropError as exc:
        raise pytest.UsageError(f"mlprop: {exc}") from None
    config.stash[_SESSION] = session
    _ACTIVE.append(session)
    CURRENT_SPEC["spec"] = session.spec
    config.addinivalue_line("markers", "mlprop: one of mlprop's properties")
    for component in COMPONENTS:
        config.addinivalue_line("markers", f"mlprop_{component}: mlprop's {component} "
                                "properties")
    config.addinivalue_line("markers", f"{REQUIRES_MARK}(*fields): the Target fields a "
                            "property needs (skipped when the target leaves one out)")
    if session.config.get("suite") and _runs_default_paths(config):
        suite = str(properties_dir())
        if suite not in [str(arg) for arg in config.args]:
            config.args.append(suite)


def _runs_default_paths(config: pytest.Config) -> bool:
    """True for a plain ``pytest`` (testpaths or the current directory), not when the
    user named what to run."""
    source = getattr(config, "args_source", None)
    return source is not None and source != pytest.Config.ArgsSource.ARGS


def get_target(config: pytest.Config) -> Target:
    """The session's target, loaded once; a bad spec stops the run with a clear message."""
    if _TARGET not in config.stash:
        session = config.stash[_SESSION]
        try:
            config.stash[_TARGET] = load_target(session.spec)
        except MlpropError as exc:
            raise pytest.UsageError(f"mlprop: {exc} (target from {session.source})") from exc
    return config.stash[_TARGET]


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[_SESSION]
    lines = [f"mlprop target: {session.spec} (from {session.source}); mlprop profile: "
             f"{session.profile} (from {session.profile_source}); mlprop {__version__}"]
    lowered = {c: s for c, s in session.scales.items() if s != 1.0}
    if lowered:
        lines.append("mlprop examples scaled: " + ", ".join(
            f"{c} x{s:g}" for c, s in lowered.items()))
    if session.components != COMPONENTS:
        lines.append("mlprop components: " + ", ".join(session.components))
    if session.shard:
        lines.append(f"mlprop shard: {session.shard[0]}/{session.shard[1]}")
    advice = thread_advice(config, os.environ)
    if advice:
        lines.append(advice)
    return lines


def thread_advice(config: pytest.Config, environ: Mapping[str, str]) -> str | None:
    """Under pytest-xdist without ``OMP_NUM_THREADS``, a hint: each worker's torch would use
    every core (measured: the suite took 50 s with ``-n 2`` on 2 cores instead of 8 s with
    one thread per worker). The plugin does not change torch's threads itself: they are the
    user's."""
    workers = getattr(config.option, "numprocesses", None)
    if not workers or environ.get("OMP_NUM_THREADS"):
        return None
    cores = os.cpu_count() or 1
    per_worker = max(1, cores // (workers if isinstance(workers, int) else cores))
    return (f"mlprop: pytest-xdist workers share {cores} cores; set OMP_NUM_THREADS="
            f"{per_worker} (torch threads per worker) or the workers oversubscribe the CPU")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The target under test (see the module docstring for how it is chosen)."""
    return get_target(request.config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every property that takes ``augmentation_name`` once per target augmentation
    (once, skipped, when the target declares none)."""
    if "augmentation_name" in metafunc.fixturenames:
        names = sorted(get_target(metafunc.config).augmentations)
        metafunc.parametrize("augmentation_name", names or ["none"])


def is_property(item: pytest.Item) -> bool:
    """True for a test function of mlprop's property suite."""
    path = getattr(item, "path", None)
    return path is not None and Path(path).resolve().parent == properties_dir()


def component_of(item: pytest.Item) -> str:
    """``test_preprocess.py`` -> ``preprocess``."""
    return Path(item.path).stem.removeprefix("test_")


def required_fields(item: pytest.Item, target: Target) -> list[str]:
    """The optional Target fields ``item`` needs that ``target`` leaves out."""
    needed: list[str] = []
    for mark in item.iter_markers(REQUIRES_MARK):
        needed.extend(mark.args)
    if "augmentation_name" in getattr(item, "fixturenames", ()):
        needed.append("augmentations")
    return fields_left_out(needed, target)


def group_by_module(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place so each test module's items are contiguous.

    Modules keep the order of their first item, items keep their order inside a module.
    mutmut passes a mutant's covering tests fastest first, interleaving modules; without
    this a module-scoped fixture (a trained model) is built again every time its module
    comes back."""
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.nodeid.split("::", 1)[0], index)
    items.sort(key=lambda item: first[item.nodeid.split("::", 1)[0]])


def order_properties(items: list[pytest.Item]) -> None:
    """Put mlprop's properties in suite order in the slots they occupy (other tests keep
    their places): component along the data flow (preprocess, augment, model, training,
    predict, metamorphic, attribution), then within a component the declared cost
    (:func:`mlprop.profiles.cost_of`: cheap first), then the order of the module."""
    slots = [index for index, item in enumerate(items) if is_property(item)]
    rank = {name: position for position, name in enumerate(COMPONENTS)}
    ordered = sorted((items[index] for index in slots),
                     key=lambda item: (rank.get(component_of(item), len(rank)),
                                       cost_of(getattr(item, "obj", None))))
    for index, item in zip(slots, ordered, strict=True):
        items[index] = item


def shard_of(name: str, count: int) -> int:
    """The shard (1-based) of property ``name``: stable across runs and machines."""
    import zlib

    return zlib.crc32(name.encode()) % count + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = config.stash[_SESSION]
    if os.environ.get("MUTANT_UNDER_TEST"):
        group_by_module(items)
    properties = [item for item in items if is_property(item)]
    collected_names = {getattr(item, "originalname", item.name) for item in items
                       if "target" in getattr(item, "fixturenames", ())}
    deselected = []
    for item in properties:
        component = component_of(item)
        name = getattr(item, "originalname", item.name)
        if component not in session.components or (
                session.shard and shard_of(name, session.shard[1]) != session.shard[0]):
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        dropped = set(map(id, deselected))
        items[:] = [item for item in items if id(item) not in dropped]
        properties = [item for item in properties if id(item) not in dropped]
    order_properties(items)
    session.properties = len(properties)
    using_target = [item for item in items if "target" in getattr(item, "fixturenames", ())]
    if not using_target:
        return
    target = get_target(config)
    for item in properties:
        component = component_of(item)
        item.add_marker("mlprop")
        item.add_marker(f"mlprop_{component}")
        apply_settings(item.obj, property_settings(item.obj, session.profile,
                                                   session.scales.get(component, 1.0)))
        missing = required_fields(item, target)
        if missing:
            fields = ", ".join(f"Target.{name}" for name in missing)
            item.add_marker(pytest.mark.skip(reason=f"{SKIP_PREFIX}{fields}"))
    declared = dict(target.expected_failed_checks)
    for item in using_target:
        name = getattr(item, "originalname", item.name)
        if name in declared:
            item.add_marker(pytest.mark.xfail(reason=f"declared by target: {declared[name]}",
                                              strict=True))
    session.unmatched = sorted(set(declared) - collected_names)
    if properties:
        session.unknown_thresholds = sorted(set(target.thresholds) - known_thresholds())


BUDGET_THRESHOLDS = frozenset({"model_batch"})
"""Threshold names read outside the property modules (:mod:`mlprop.budget`)."""


def known_thresholds() -> frozenset[str]:
    """Every threshold name a property reads: the ``DEFAULTS`` of the suite's modules and
    the model budget's."""
    import importlib

    names = set(BUDGET_THRESHOLDS)
    for path in sorted(properties_dir().glob("test_*.py")):
        module = importlib.import_module(f"{SUITE_PACKAGE}.{path.stem}")
        names.update(getattr(module, "DEFAULTS", {}))
    return frozenset(names)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Record properties skipped for a missing Target field or undecided, and properties
    that failed (in the process that reports: the only one under pytest-xdist, where workers
    collect and run)."""
    if (report.failed and report.when == "call" and _ACTIVE and "mlprop" in report.keywords
            and not str(report.longrepr).startswith("[XPASS(strict)]")):
        test_id = report.nodeid.split("::")[-1]
        _ACTIVE[-1].failed[test_id] = test_id.split("[", 1)[0]
        return
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    if not _ACTIVE or not reason.startswith((SKIP_PREFIX, NOT_CHECKED_PREFIX)):
        return
    session = _ACTIVE[-1]
    if reason.startswith(NOT_CHECKED_PREFIX):
        session.undecided[report.nodeid.split("::")[-1]] = reason.removeprefix(
            NOT_CHECKED_PREFIX)
        return
    name = report.nodeid.split("::")[-1]
    for field_name in reason.removeprefix(SKIP_PREFIX).split(", "):
        tests = session.not_checked.setdefault(field_name.removeprefix("Target."), [])
        if name not in tests:
            tests.append(name)


_ACTIVE: list[Session] = []
"""The sessions of the pytest runs in progress in this process (nested in-process runs, as
pytester makes, push and pop theirs)."""


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    _ACTIVE[:] = [active for active in _ACTIVE if active is not session]


def likely_causes(name: str) -> list[dict[str, str]]:
    """The faults of mlprop's catalogue that property ``name`` is known to catch (on any
    target), each as ``{"name", "component", "description"}``: the likely causes of its
    failure. Empty when none does or the catalogue cannot be loaded."""
    try:
        from mlprop.faults import CATALOGUE
    except Exception:
        return []
    return [{"name": fault.name, "component": fault.component,
             "description": " ".join(fault.description.split())}
            for fault in CATALOGUE.values() if name in fault.every_catch]


def write_likely_causes(terminalreporter, failed: Mapping[str, str]) -> None:
    """Under "mlprop: likely causes", each failed property with the catalogue faults it is
    known to catch (a property no fault names is left out)."""
    causes = {test_id: likely_causes(name) for test_id, name in failed.items()}
    causes = {test_id: found for test_id, found in causes.items() if found}
    if not causes:
        return
    terminalreporter.write_sep("=", "mlprop: likely causes", red=True)
    for test_id, found in causes.items():
        terminalreporter.write_line(f"{test_id} failed; bugs it is known to catch (mlprop's "
                                    "fault catalogue, `mlprop faults`):")
        for fault in found:
            terminalreporter.write_line(f"  - {fault['name']} ({fault['component']}): "
                                        f"{fault['description']}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None:
        return
    if session.not_checked or session.undecided:
        terminalreporter.write_sep("=", "mlprop: not checked", yellow=True)
    for name, why in session.undecided.items():
        terminalreporter.write_line(f"{name}: could not decide on this target: {why}")
    for name in sorted(session.not_checked, key=lambda n: (
            OPTIONAL_FIELDS.index(n) if n in OPTIONAL_FIELDS else len(OPTIONAL_FIELDS), n)):
        tests = session.not_checked[name]
        unique = list(dict.fromkeys(tests))
        terminalreporter.write_line(
            f"{len(unique)} {'property' if len(unique) == 1 else 'properties'} skipped: the "
            f"target has no {name} (set Target.{name} to check "
            f"{'it' if len(unique) == 1 else 'them'}): {', '.join(unique)}")
    write_likely_causes(terminalreporter, session.failed)
    if session.unknown_thresholds:
        terminalreporter.write_sep("=", "mlprop: thresholds that no property reads",
                                   yellow=True)
        for name in session.unknown_thresholds:
            terminalreporter.write_line(f"{name}: set in Target(thresholds=...), but no property "
                                        "reads it (typo or renamed threshold?); known: "
                                        + ", ".join(sorted(known_thresholds())))
    if session.unmatched:
        terminalreporter.write_sep("=", "mlprop: expected_failed_checks that match no property",
                                   yellow=True)
        for name in session.unmatched:
            terminalreporter.write_line(f"{name}: declared by the target, but no collected "
                                        "property has this name (typo or renamed check?)")
