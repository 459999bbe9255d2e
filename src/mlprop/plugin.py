"""pytest plugin: chooses the target under test, registers Hypothesis profiles.

Target resolution order (DESIGN.md): ``--mlprop-target`` > ``$MLPROP_TARGET`` >
``[tool.mlprop] target`` in the pyproject.toml of the directory pytest runs from >
``mlprop.digits:target``. The ``target`` fixture yields it; the header names it.
A target's ``expected_failed_checks`` turn the named properties into strict xfails, and a
declaration that names no collected property is reported at the end of the run.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from mlprop.checks import CURRENT_SPEC
from mlprop.errors import MlpropError
from mlprop.target import Target, load_target

DEFAULT_TARGET = "mlprop.digits:target"

_QUIET_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=20, database=None,
    print_blob=True, suppress_health_check=_QUIET_CHECKS,
)
settings.register_profile("dev", deadline=None, max_examples=50,
                          suppress_health_check=_QUIET_CHECKS)
settings.register_profile("thorough", deadline=None, max_examples=500,
                          suppress_health_check=_QUIET_CHECKS)
settings.register_profile(
    "mutmut", derandomize=True, deadline=None, max_examples=10, database=None,
    suppress_health_check=_QUIET_CHECKS,
)


def default_profile(environ: os._Environ | dict = os.environ) -> str:
    """``mutmut`` under a mutation run, ``ci`` when ``CI`` is set, else ``dev``."""
    if environ.get("MUTANT_UNDER_TEST"):
        return "mutmut"
    if environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        return "ci"
    return "dev"


settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or default_profile())


def _pyproject_target(directory: Path) -> str | None:
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = data.get("tool", {}).get("mlprop", {}).get("target")
    return value if isinstance(value, str) else None


def resolve_target_spec(option: str | None, environ: dict | os._Environ,
                        directory: Path) -> tuple[str, str]:
    """Return ``(spec, where_it_came_from)`` following the documented order."""
    if option:
        return option, "--mlprop-target"
    if environ.get("MLPROP_TARGET"):
        return environ["MLPROP_TARGET"], "MLPROP_TARGET"
    from_file = _pyproject_target(directory)
    if from_file:
        return from_file, f"[tool.mlprop] in {directory / 'pyproject.toml'}"
    return DEFAULT_TARGET, "default"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlprop")
    group.addoption("--mlprop-target", default=None, metavar="MODULE:ATTR",
                    help="the Target the property suite checks (default: $MLPROP_TARGET, "
                         "[tool.mlprop] target, then mlprop.digits:target)")


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
    spec, source = resolve_target_spec(config.getoption("--mlprop-target"), os.environ,
                                       Path(config.invocation_params.dir))
    config.stash[_SPEC] = (spec, source)
    CURRENT_SPEC["spec"] = spec


_SPEC = pytest.StashKey[tuple[str, str]]()
_TARGET = pytest.StashKey[Target]()


def get_target(config: pytest.Config) -> Target:
    """The session's target, loaded once; a bad spec stops the run with a clear message."""
    if _TARGET not in config.stash:
        spec, source = config.stash[_SPEC]
        try:
            config.stash[_TARGET] = load_target(spec)
        except MlpropError as exc:
            raise pytest.UsageError(f"mlprop: {exc} (target from {source})") from exc
    return config.stash[_TARGET]


def pytest_report_header(config: pytest.Config) -> list[str]:
    spec, source = config.stash[_SPEC]
    profile = settings.get_current_profile_name()
    return [f"mlprop target: {spec} (from {source}); hypothesis profile: {profile}"]


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The target under test (see the module docstring for how it is chosen)."""
    return get_target(request.config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every property that takes ``augmentation_name`` once per target augmentation."""
    if "augmentation_name" in metafunc.fixturenames:
        names = sorted(get_target(metafunc.config).augmentations)
        metafunc.parametrize("augmentation_name", names)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MUTANT_UNDER_TEST"):
        group_by_module(items)
    using_target = [item for item in items if "target" in getattr(item, "fixturenames", ())]
    if not using_target:
        return
    declared = dict(get_target(config).expected_failed_checks)
    matched: set[str] = set()
    for item in using_target:
        name = getattr(item, "originalname", item.name)
        if name in declared:
            matched.add(name)
            item.add_marker(pytest.mark.xfail(reason=f"declared by target: {declared[name]}",
                                              strict=True))
    config.stash[_UNMATCHED] = sorted(set(declared) - matched)


_UNMATCHED = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    unmatched = config.stash.get(_UNMATCHED, [])
    if unmatched:
        terminalreporter.write_sep("=", "mlprop: expected_failed_checks that match no property",
                                   yellow=True)
        for name in unmatched:
            terminalreporter.write_line(f"{name}: declared by the target, but no collected "
                                        "property has this name (typo or renamed check?)")
