"""Tests of the pytest plugin: target resolution, header, profiles, expected_failed_checks.

Inner pytest sessions run with the ``pytester`` fixture (in-process where possible: it is
much faster; one subprocess checks the import-time profile choice).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import Phase

from mlprop.config import ConfigError
from mlprop.plugin import DEFAULT_TARGET, resolve_target_spec
from mlprop.profiles import (
    PROFILES,
    ProfileError,
    default_profile,
    examples_at_most,
    profile_name,
    property_settings,
)

pytest_plugins = ["pytester"]

_ENV_VARS = ("MLPROP_TARGET", "CI", "HYPOTHESIS_PROFILE", "MUTANT_UNDER_TEST", "MLPROP_PROFILE")

TOY_TARGET_MODULE = '''
import numpy as np
from mlprop import Augmentation, ImageSchema, Target


def _same(images, *, seed, magnitude):
    return images


target = Target(
    name="toy",
    schema=ImageSchema(num_classes=2, min_side=2, max_side=4),
    input_shape=(1, 2, 2),
    input_range=(0.0, 1.0),
    preprocess=lambda images: images,
    augmentations={"same": Augmentation(fn=_same)},
    build_model=lambda seed: None,
    trained_model=lambda: None,
    predict=lambda images: images,
    holdout=lambda: (np.zeros((0, 2, 2), np.uint8), np.zeros(0, np.int64)),
    min_accuracy=0.5,
    expected_failed_checks=DECLARED,
)
not_a_target = 42
'''


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLPROP_CACHE_DIR", str(tmp_path / "mlprop-cache"))


@pytest.fixture(autouse=True)
def _restore_plugin_globals():
    """In-process inner sessions run the plugin's pytest_configure in *this* process; give
    the outer session back any module-level state it records (e.g. the current spec)."""
    try:
        from mlprop.checks import CURRENT_SPEC
    except ImportError:  # older layout without mlprop.checks
        yield
        return
    saved = dict(CURRENT_SPEC)
    yield
    CURRENT_SPEC.clear()
    CURRENT_SPEC.update(saved)


def _write_toy_target(pytester: pytest.Pytester, module: str, declared: dict) -> str:
    pytester.makepyfile(**{module: f"DECLARED = {declared!r}\n" + TOY_TARGET_MODULE})
    pytester.syspathinsert()
    return f"{module}:target"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process inner session (the plugin is already imported, hence the -W)."""
    return pytester.runpytest("-p", "no:cacheprovider", "-W",
                              "ignore::pytest.PytestAssertRewriteWarning", *args)


def _header(result: pytest.RunResult) -> str:
    lines = [line for line in result.outlines if line.startswith("mlprop target: ")]
    assert len(lines) == 1, result.outlines
    return lines[0]


# ------------------------------------------------------------------ default_profile


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ("mlprop-dev", "default")),
        ({"CI": "true"}, ("mlprop-ci", "CI")),
        ({"CI": "1"}, ("mlprop-ci", "CI")),
        ({"CI": "TRUE"}, ("mlprop-ci", "CI")),
        ({"CI": "false"}, ("mlprop-dev", "default")),
        ({"CI": "False"}, ("mlprop-dev", "default")),
        ({"CI": "0"}, ("mlprop-dev", "default")),
        ({"CI": "no"}, ("mlprop-dev", "default")),
        ({"CI": ""}, ("mlprop-dev", "default")),
        ({"MUTANT_UNDER_TEST": "mlprop.digits.x__mutmut_1"}, ("mlprop-mutmut",
                                                              "MUTANT_UNDER_TEST")),
        ({"MUTANT_UNDER_TEST": "m", "CI": "true"}, ("mlprop-mutmut", "MUTANT_UNDER_TEST")),
        ({"MUTANT_UNDER_TEST": ""}, ("mlprop-dev", "default")),
        ({"MLPROP_PROFILE": "thorough", "CI": "true"}, ("mlprop-thorough", "MLPROP_PROFILE")),
        ({"MLPROP_PROFILE": "mlprop-ci"}, ("mlprop-ci", "MLPROP_PROFILE")),
    ],
)
def test_default_profile(environ, expected):
    assert default_profile(environ) == expected


def test_unknown_profile_name_is_a_clear_error():
    with pytest.raises(ProfileError, match="expected one of ci, dev, thorough, mutmut, got 'fast'"):
        profile_name("fast")


def test_profiles_have_the_documented_settings():
    ci, dev = PROFILES["mlprop-ci"], PROFILES["mlprop-dev"]
    thorough, mutmut = PROFILES["mlprop-thorough"], PROFILES["mlprop-mutmut"]
    assert ci["derandomize"] and ci["deadline"] is None and ci["database"] is None
    assert mutmut["derandomize"] and mutmut["deadline"] is None and mutmut["database"] is None
    assert dev["deadline"] is None and thorough["deadline"] is None
    assert (mutmut["max_examples"] <= ci["max_examples"] < dev["max_examples"]
            < thorough["max_examples"])


def test_property_settings_cap_and_scale_the_examples():
    def cheap():
        pass

    @examples_at_most(3)
    def costly():
        pass

    assert property_settings(cheap, "ci").max_examples == 20
    assert property_settings(costly, "ci").max_examples == 3
    assert property_settings(cheap, "thorough", 0.1).max_examples == 50
    assert property_settings(costly, "ci", 0.01).max_examples == 1
    assert property_settings(cheap, "ci").derandomize


def test_after_a_failure_costly_properties_and_quick_profiles_skip_the_explain_phase():
    def cheap():
        pass

    @examples_at_most(3)
    def costly():
        pass

    for profile in ("ci", "mutmut"):
        assert Phase.explain not in property_settings(cheap, profile).phases
        assert Phase.shrink in property_settings(cheap, profile).phases
    assert Phase.explain in property_settings(cheap, "dev").phases
    assert Phase.explain not in property_settings(costly, "thorough").phases
    assert property_settings(cheap, "ci").report_multiple_bugs
    assert not property_settings(cheap, "mutmut").report_multiple_bugs
    assert not property_settings(costly, "dev").report_multiple_bugs
    assert property_settings(cheap, "ci", phases=(Phase.generate,)).phases == (Phase.generate,)


def test_the_plugin_never_registers_or_loads_a_hypothesis_profile():
    """Importing the plugin leaves Hypothesis's global state alone (the user's). A fresh
    interpreter: reloading the plugin here would give it new stash keys mid-session."""
    probe = (
        "from hypothesis import settings\n"
        "before = settings.get_current_profile_name(), settings.default.max_examples, "
        "sorted(settings._profiles)\n"
        "import mlprop.plugin, mlprop.profiles\n"
        "after = settings.get_current_profile_name(), settings.default.max_examples, "
        "sorted(settings._profiles)\n"
        "assert before == after, (before, after)\n"
        "assert not any(name.startswith('mlprop') for name in after[2]), after\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


USER_CONFTEST = """
from hypothesis import settings

settings.register_profile("users", max_examples=7)
APPLIED = []

def pytest_collection_finish(session):
    for item in session.items:  # the property as pytest collected it
        if item.name == "test_preprocess_is_deterministic":
            APPLIED.append(item.obj._hypothesis_internal_use_settings)
"""

USER_HYPOTHESIS_TEST = """
from hypothesis import given, settings, strategies as st

from conftest import APPLIED

SEEN = []

@given(st.integers())
def test_user_property(x):
    SEEN.append(settings.default.max_examples)

def test_user_settings_are_the_users_and_mlprops_are_mlprops():
    assert set(SEEN) == {{{user}}}, SEEN
    assert len(SEEN) == {user}
    (applied,) = APPLIED
    assert applied.max_examples == {mlprop}
    assert applied.derandomize is {derandomized}
"""


@pytest.mark.parametrize(
    ("environ", "args", "user", "mlprop", "header"),
    [
        ({"CI": "true"}, [], 100, 20, "mlprop-ci (from CI)"),
        ({}, [], 100, 50, "mlprop-dev (from default)"),
        ({"CI": "true"}, ["--hypothesis-profile", "users"], 7, 20, "mlprop-ci (from CI)"),
        ({}, ["--mlprop-profile", "thorough"], 100, 500,
         "mlprop-thorough (from --mlprop-profile)"),
    ],
    ids=["CI", "local", "user-profile", "mlprop-option"],
)
def test_user_hypothesis_tests_keep_their_settings(pytester, monkeypatch, environ, args,
                                                   user, mlprop, header):
    """A user's own Hypothesis test in the same run as mlprop's properties keeps Hypothesis's
    default (or the profile the user chose) while the properties use mlprop's profile.
    A fresh interpreter: a subprocess."""
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=USER_HYPOTHESIS_TEST.format(
        user=user, mlprop=mlprop, derandomized=mlprop == 20))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "test_user.py", "--pyargs",
        "mlprop.properties.test_preprocess", "-k",
        "user or test_preprocess_is_deterministic", "--mlprop-examples-scale", "1", *args)
    assert f"mlprop profile: {header}" in _header(result)
    result.assert_outcomes(passed=3)


# -------------------------------------------------------------- target resolution


def test_resolve_target_spec_pure_function(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.mlprop]\ntarget = "file:t"\n')
    env = {"MLPROP_TARGET": "env:t"}
    assert resolve_target_spec("opt:t", env, tmp_path) == ("opt:t", "--mlprop-target")
    assert resolve_target_spec(None, env, tmp_path) == ("env:t", "MLPROP_TARGET")
    assert resolve_target_spec(None, {}, tmp_path) == (
        "file:t", f"[tool.mlprop] in {tmp_path / 'pyproject.toml'}")
    assert resolve_target_spec(None, {}, tmp_path / "nowhere") == (DEFAULT_TARGET, "default")
    # empty values fall through to the next source
    assert resolve_target_spec("", {"MLPROP_TARGET": ""}, tmp_path)[0] == "file:t"


def test_pyproject_without_an_mlprop_section_falls_back_to_default(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.other]\ntarget = 'x:y'\n")
    assert resolve_target_spec(None, {}, tmp_path) == (DEFAULT_TARGET, "default")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tool.mlprop]\ntarget = 3\n", "target: expected a string"),
        ("[tool.mlprop\nbroken", "not valid TOML"),
        ("[tool.mlprop]\ntargt = 'x:y'\n", "unknown key 'targt'"),
        ("[tool.mlprop]\nsuite = 'yes'\n", "suite: expected a boolean"),
        ("[tool.mlprop]\ncomponents = ['preprocess', 'modle']\n", "components: expected"),
        ("[tool.mlprop]\nexamples_scale = true\n", "examples_scale: expected a number"),
    ],
    ids=["not-a-string", "bad-toml", "unknown-key", "suite-not-bool", "unknown-component",
         "bool-scale"],
)
def test_bad_pyproject_is_a_clear_error_naming_the_key(tmp_path, content, message):
    (tmp_path / "pyproject.toml").write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_target_spec(None, {}, tmp_path)
    assert str(tmp_path / "pyproject.toml") in str(caught.value)


def test_bad_pyproject_stops_pytest_with_one_usage_error(pytester):
    pytester.makepyprojecttoml("[tool.mlprop]\ntargt = 'x:y'\n")
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mlprop:*unknown key 'targt'*"])


@pytest.mark.parametrize(
    ("use_option", "use_env", "use_file", "expected"),
    [
        (True, True, True, "opt_mod:target (from --mlprop-target)"),
        (False, True, True, "env_mod:target (from MLPROP_TARGET)"),
        (False, False, True, "file_mod:target (from [tool.mlprop] in "),
        (False, False, False, f"{DEFAULT_TARGET} (from default)"),
    ],
    ids=["option-beats-env", "env-beats-pyproject", "pyproject-beats-default", "default"],
)
def test_header_names_the_target_and_its_source(pytester, monkeypatch, use_option, use_env,
                                                use_file, expected):
    # no test uses the `target` fixture, so the (non-existent) modules are never imported
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    args = []
    if use_option:
        args += ["--mlprop-target", "opt_mod:target"]
    if use_env:
        monkeypatch.setenv("MLPROP_TARGET", "env_mod:target")
    if use_file:
        pytester.makepyprojecttoml('[tool.mlprop]\ntarget = "file_mod:target"\n')
    result = _run(pytester, *args)
    header = _header(result)
    assert header.startswith(f"mlprop target: {expected}")
    if "[tool.mlprop]" in expected:
        assert str(Path(pytester.path) / "pyproject.toml") in header
    assert "mlprop profile: " in header
    result.assert_outcomes(passed=1)


def test_pyproject_is_read_from_the_invocation_directory(pytester, monkeypatch):
    pytester.makepyprojecttoml('[tool.mlprop]\ntarget = "outer_mod:target"\n')
    sub = pytester.mkdir("sub")
    (sub / "pyproject.toml").write_text('[tool.mlprop]\ntarget = "inner_mod:target"\n')
    (sub / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    monkeypatch.chdir(sub)
    result = _run(pytester, str(sub))
    assert "mlprop target: inner_mod:target (from [tool.mlprop]" in _header(result)


def test_target_fixture_yields_the_resolved_target(pytester):
    spec = _write_toy_target(pytester, "toy_fixture_target", {})
    pytester.makepyfile(test_uses_target='''
from mlprop import Target

def test_it(target):
    assert isinstance(target, Target)
    assert target.name == "toy"

def test_same_object(target, request):
    assert request.getfixturevalue("target") is target
''')
    result = _run(pytester, "--mlprop-target", spec)
    result.assert_outcomes(passed=2)


# ------------------------------------------------------------------------ bad specs


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:target", "expected an importable module 'no_such_module_xyz'"),
        ("missing-colon", "expected 'module:attribute'"),
        ("a:b:c", "expected 'module:attribute'"),
        ("toy_bad_target:nope", "no such attribute"),
        ("toy_bad_target:not_a_target", "expected an mlprop.Target instance, got int"),
    ],
)
def test_bad_spec_is_a_usage_error_naming_the_spec(pytester, spec, message):
    _write_toy_target(pytester, "toy_bad_target", {})
    pytester.makepyfile(test_uses_target="def test_it(target):\n    pass\n")
    result = _run(pytester, "--mlprop-target", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = "\n".join(result.errlines)
    assert "ERROR: mlprop: bad target:" in errors
    assert repr(spec) in errors or spec in errors
    assert message in errors
    assert "(target from --mlprop-target)" in errors
    output = errors + "\n".join(result.outlines)
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


def test_bad_spec_from_environment_names_its_source(pytester, monkeypatch):
    monkeypatch.setenv("MLPROP_TARGET", "no_such_module_xyz:target")
    pytester.makepyfile(test_uses_target="def test_it(target):\n    pass\n")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no_such_module_xyz*(target from MLPROP_TARGET)*"])


# ---------------------------------------------------------- expected_failed_checks


EXPECTED_FAILURES_TESTS = '''
import pytest

def test_declared_and_failing(target):
    assert False, "the pipeline breaks this on purpose"

def test_declared_but_passing(target):
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_declared_parametrized(target, n):
    assert n < 0

def test_not_declared(target):
    pass

def test_same_name_without_target():
    pass
'''


def test_expected_failed_checks_become_strict_xfails(pytester):
    declared = {
        "test_declared_and_failing": "our jitter is never zero",
        "test_declared_but_passing": "stale declaration",
        "test_declared_parametrized": "both params fail",
        "test_typo_in_check_name": "matches nothing",
        "test_same_name_without_target": "not a property: does not use the target",
    }
    spec = _write_toy_target(pytester, "toy_xfail_target", declared)
    pytester.makepyfile(test_props=EXPECTED_FAILURES_TESTS)
    result = _run(pytester, "-rfxX", "--mlprop-target", spec)
    result.assert_outcomes(passed=2, xfailed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*XFAIL*test_declared_and_failing*declared by target: our jitter is never zero*",
    ])
    result.stdout.fnmatch_lines(["[[]XPASS(strict)[]] declared by target: stale declaration"])
    result.stdout.fnmatch_lines(["FAILED*test_declared_but_passing*"])
    result.stdout.fnmatch_lines([
        "*mlprop: expected_failed_checks that match no property*",
        "test_same_name_without_target: declared by the target, but no collected property*",
        "test_typo_in_check_name: declared by the target, but no collected property*",
    ])
    summary = result.stdout.str()
    assert "test_declared_and_failing: declared by the target" not in summary
    assert "test_declared_parametrized: declared by the target" not in summary


def test_no_unmatched_section_when_every_declaration_matches(pytester):
    spec = _write_toy_target(pytester, "toy_clean_target",
                             {"test_declared_and_failing": "on purpose"})
    pytester.makepyfile(test_props=EXPECTED_FAILURES_TESTS)
    result = _run(pytester, "--mlprop-target", spec,
                                "-k", "declared_and_failing or not_declared")
    result.assert_outcomes(passed=1, xfailed=1, deselected=4)
    assert "match no property" not in result.stdout.str()


def test_runs_without_target_tests_do_not_load_the_target(pytester):
    """tests/ (no `target` fixture) must not import, or fail on, the configured target."""
    pytester.makepyfile(toy_exploding_target="raise RuntimeError('imported the target')\n",
                        test_plain="def test_plain():\n    pass\n")
    pytester.syspathinsert()
    result = _run(pytester, "--mlprop-target", "toy_exploding_target:target")
    result.assert_outcomes(passed=1)
    assert "toy_exploding_target" not in sys.modules
    # while a run that does use it stops with a usage error naming the import failure
    pytester.makepyfile(test_uses_target="def test_it(target):\n    pass\n")
    result = _run(pytester, "--mlprop-target", "toy_exploding_target:target")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*RuntimeError: imported the target*"])


# ------------------------------------------------- the suite inside the user's own run

PREPROCESS_ONLY_TARGET = '''
import numpy as np
from mlprop import ImageSchema, Target

SCHEMA = ImageSchema(num_classes=2, min_side=4, max_side=4)


def preprocess(images):
    SCHEMA.validate(images)
    return (np.asarray(images, dtype=np.float32) / 255.0)[:, None]


target = Target(name="day-one", schema=SCHEMA, input_shape=(1, 4, 4), input_range=(0.0, 1.0),
                preprocess=preprocess)
'''


def _day_one_project(pytester: pytest.Pytester, *, suite: bool) -> None:
    pytester.makepyfile(day_one_target=PREPROCESS_ONLY_TARGET,
                        test_users_own="def test_users_own():\n    assert 1 + 1 == 2\n")
    pytester.makepyprojecttoml(
        f'[tool.mlprop]\ntarget = "day_one_target:target"\nsuite = {str(suite).lower()}\n'
        '[tool.pytest.ini_options]\npythonpath = ["."]\n')


def test_suite_true_runs_the_properties_inside_plain_pytest(pytester):
    """One line of configuration: plain `pytest` runs the user's tests and mlprop's
    properties; a target without a model or augmentations gets its missing parts skipped
    and listed with the field that would enable them, never a silent pass."""
    _day_one_project(pytester, suite=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 5  # the user's test and the preprocess properties
    assert outcomes["skipped"] > 10
    assert "failed" not in outcomes
    header = _header(result)
    assert "day_one_target:target (from [tool.mlprop] in" in header and "mlprop 0.1.0" in header
    output = result.stdout.str()
    assert "test_users_own.py ." in output
    result.stdout.fnmatch_lines([
        "*mlprop: not checked*",
        "* properties skipped: the target has no augmentations (set Target.augmentations*",
        "* properties skipped: the target has no build_model (set Target.build_model to check "
        "them): test_model_output_is_one_logit_row_per_image*",
        "*the target has no trained_model (set Target.trained_model*",
        "*the target has no predict (set Target.predict*",
        "*the target has no holdout (set Target.holdout*",
    ])


def test_without_suite_true_plain_pytest_runs_only_the_users_tests(pytester):
    _day_one_project(pytester, suite=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "mlprop: not checked" not in result.stdout.str()


def test_components_option_and_markers_select_a_subset(pytester):
    _day_one_project(pytester, suite=False)
    by_option = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "mlprop.properties", "--collect-only", "-q",
        "--mlprop-components", "augment,model")
    ids = [line for line in by_option.outlines if "::" in line]
    assert ids and all("test_augment.py" in i or "test_model.py" in i for i in ids)
    by_marker = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "mlprop.properties", "--collect-only", "-q",
        "-m", "mlprop_model")
    marked = [line for line in by_marker.outlines if "::" in line]
    assert marked and all("test_model.py" in i for i in marked)
    assert {i for i in ids if "test_model.py" in i} == set(marked)


def test_shards_are_disjoint_and_their_union_is_the_suite(pytester):
    _day_one_project(pytester, suite=False)

    def collected(*args: str) -> set[str]:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pyargs",
                                               "mlprop.properties", "--collect-only", "-q",
                                               *args)
        return {line.split("::", 1)[1] for line in result.outlines if "::" in line}

    whole = collected()
    shards = [collected("--mlprop-shard", f"{k}/3") for k in (1, 2, 3)]
    assert len(whole) > 30
    assert set().union(*shards) == whole
    assert sum(len(s) for s in shards) == len(whole)  # disjoint
    assert all(shards)
    # a property's parametrizations stay together (split by property)
    for shard in shards:
        names = {i.split("[")[0] for i in shard}
        assert not any(names & {i.split("[")[0] for i in other} for other in shards
                       if other is not shard)


def test_properties_run_along_the_data_flow(pytester):
    _day_one_project(pytester, suite=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pyargs",
                                           "mlprop.properties", "--collect-only", "-q")
    files = [line.split("::")[0].rsplit("/", 1)[-1] for line in result.outlines if "::" in line]
    order = list(dict.fromkeys(files))
    assert order == ["test_preprocess.py", "test_augment.py", "test_model.py",
                     "test_training.py", "test_predict.py", "test_metamorphic.py",
                     "test_attribution.py"]


@pytest.mark.parametrize(("args", "message"), [
    (["--mlprop-components", "preprocess,modle"], "--mlprop-components: unknown ['modle']"),
    (["--mlprop-shard", "4/3"], "--mlprop-shard: expected 1 <= K <= N"),
    (["--mlprop-examples-scale", "model=0"], "expected a number in (0, 100]"),
    (["--mlprop-profile", "fast"], "expected one of ci, dev, thorough, mutmut"),
])
def test_bad_mlprop_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = _run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in "\n".join(result.errlines)


def test_header_says_what_was_scaled_down(pytester):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = _run(pytester, "--mlprop-examples-scale", "model=0.25,attribution=0.5")
    result.stdout.fnmatch_lines(["mlprop examples scaled: model x0.25, attribution x0.5"])


def test_xdist_gives_the_serial_verdicts_and_the_not_checked_list(pytester):
    """`-n 2`: the same outcomes as a serial run, and the not-checked list still printed
    (under xdist the workers collect and skip; the controller only sees their reports)."""
    _day_one_project(pytester, suite=True)
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    assert parallel.parseoutcomes() == serial.parseoutcomes() | {
        "passed": serial.parseoutcomes()["passed"]}
    assert parallel.ret == serial.ret == 0
    for result in (serial, parallel):
        result.stdout.fnmatch_lines(["*mlprop: not checked*",
                                     "* properties skipped: the target has no build_model*"])


def test_a_threshold_no_property_reads_is_reported(pytester):
    """A renamed or misspelt threshold must not be silently ignored (the erasure property's
    `erasure_slack` is gone; `confidence` is read)."""
    pytester.makepyfile(stale_thresholds=(
        "from mlprop.target import load_target\n"
        "target = load_target('mlprop.digits:target').replace(\n"
        "    thresholds={'erasure_slack': 0.02, 'confidence': 0.8, 'model_batch': 4})\n"))
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "mlprop.properties", "--collect-only", "-q",
        "--mlprop-target", "stale_thresholds:target")
    result.stdout.fnmatch_lines(["*mlprop: thresholds that no property reads*",
                                 "erasure_slack: set in Target(thresholds=...), but no property*"])
    out = result.stdout.str()
    assert "confidence: set in" not in out and "model_batch: set in" not in out


def test_a_property_that_cannot_decide_is_listed_as_not_checked_with_its_reason(pytester):
    spec = _write_toy_target(pytester, "toy_undecided_target", {})
    pytester.makepyfile(test_undecided=(
        "from mlprop.checks import not_checked\n"
        "def test_cannot_decide(target):\n"
        "    not_checked('no image the augmentation acts on (tried 4)')\n"
        "def test_decides(target):\n"
        "    pass\n"))
    result = _run(pytester, "--mlprop-target", spec, "--mlprop-report", "report")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*mlprop: not checked*",
        "test_cannot_decide: could not decide on this target: no image the augmentation acts "
        "on (tried 4)"])
    import json

    results = json.loads((pytester.path / "report" / "results.json").read_text())
    assert {"part": "test_cannot_decide", "why": "could not decide on this target: no image "
            "the augmentation acts on (tried 4)"} in results["not_run"]
