"""Fuzz the project-configuration boundaries: ``[tool.mlprop]`` (``config.read_config``),
``mlprop init``'s input (``project_init.plan_init`` / ``write_plan``) and ``[tool.mutmut]`` as
the mutation audit reads it (``audit.mutation.load_config``).

Inputs: mutated seed ``pyproject.toml`` files (flipped bits, truncation, inserted bytes...)
and generated ones (random headers, keys and values of every TOML type, dotted keys, inline
and array-of-tables ``tool``, CRLF line ends). Oracles:

- ``read_config``: a :class:`ProjectConfig` whose every key is known and whose values the
  plugin accepts (profile name, examples scale), or a ``ConfigError`` naming the file (and
  ``[tool.mlprop]`` when the TOML itself parsed).
- ``mlprop init``: an ``InitError`` naming the file or the project, with not one byte of the
  project changed; or a plan whose written ``pyproject.toml`` parses, keeps every line of
  the user's text in order (a prefix when the file had no ``[tool.*]`` table, otherwise the
  new sections are inserted after the existing tool tables), keeps every original value,
  reads back as a valid ``[tool.mlprop]`` and ``[tool.mutmut]``, and a rerun changes
  nothing.
- ``load_config``: a ``MutmutConfig`` whose fields are tuples of strings, or an
  ``AuditError`` naming the file.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from mlprop.audit import mutation
from mlprop.config import KEYS, ConfigError, read_config
from mlprop.errors import MlpropError
from mlprop.plugin import parse_scale
from mlprop.profiles import profile_name
from mlprop.project_init import WORKFLOW_PATH, InitError, plan_init, write_plan
from tests.fuzzing import STATS, WORKDIR, check_reader, fuzz_settings, mutations

SEEDS = [
    b'# my project\n[project]\nname = "pkg"\nversion = "0.1"\n\n[tool.black]\n'
    b"line-length = 100  # wide\n",
    b'[project]\nname = "pkg"\n\n[tool.mlprop]\ntarget = "pkg.t:target"\nprofile = "dev"\n'
    b'suite = true\ncomponents = ["model", "predict"]\nexamples_scale = {model = 0.5}\n'
    b'\n[tool.mutmut]\nsource_paths = ["src/pkg"]\nonly_mutate = ["src/pkg/*.py"]\n'
    b'pytest_add_cli_args = ["-x"]\n',
    b'tool.mlprop.target = "a:b"\ntool.mlprop.mlflow = false\n[tool.pytest.ini_options]\n'
    b'testpaths = ["tests"]\r\n',
    b'[tool]\nmutmut = {source_paths = ["src"], also_copy = ["data"]}\n'
    b"mlprop = {examples_scale = 2, equivalents = \"eq.toml\"}\n",
]

HEADERS = ["[project]", "[tool]", "[tool.mlprop]", "[tool.mutmut]", "[tool.black]",
           "[[tool.mlprop]]", "[[tool]]", "[tool.mlprop.sub]", "[tool.mutmut.x]",
           "[[tool.mutmut]]", "[tool.pytest.ini_options]"]
KEYS_SEEN = [*KEYS, "targt", "source_paths", "paths_to_mutate", "only_mutate",
             "do_not_mutate", "also_copy", "pytest_add_cli_args",
             "pytest_add_cli_args_test_selection", "tests_dir", "name", "tool", "mlprop",
             "mutmut", "tool.mlprop", "tool.mutmut", "tool.mlprop.target",
             "tool.mutmut.source_paths", '"a b"', "x"]
VALUES = ['"x"', '"pkg.t:target"', '"ci"', '"nope"', '"src/pkg"', '""', "true", "false", "1",
          "0", "0.5", "-1", "nan", "inf", "101", "[]", '["src/pkg"]', '["model"]',
          '["nope", 1]', "[1, 2]", '[["a"]]', "{model = 0.5}", "{x = 1}", '{model = "a"}',
          "{}", '{source_paths = ["src"]}', "1979-05-27", '"""\nmulti"""', "'lit'"]


@st.composite
def pyprojects(draw: st.DrawFn) -> bytes:
    """A generated pyproject.toml: headers, assignments, comments, in any order."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["header", "pair", "pair", "pair", "comment", "blank"]))
        if kind == "header":
            lines.append(draw(st.sampled_from(HEADERS)))
        elif kind == "pair":
            lines.append(f"{draw(st.sampled_from(KEYS_SEEN))} = {draw(st.sampled_from(VALUES))}")
        elif kind == "comment":
            lines.append("# " + draw(st.text(st.characters(codec="utf-8",
                                                           exclude_categories=["Cc", "Cs"]),
                                             max_size=10)))
        else:
            lines.append("")
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return (end.join(lines) + draw(st.sampled_from(["", end]))).encode("utf-8")


INPUTS = st.one_of(st.sampled_from(SEEDS).flatmap(lambda seed: mutations(seed, header=80)),
                   pyprojects())


def project(name: str) -> Path:
    """A project directory with one package (``src/pkg``) and ``tests/``."""
    root = WORKDIR / name
    (root / "src" / "pkg").mkdir(parents=True, exist_ok=True)
    (root / "src" / "pkg" / "__init__.py").touch()
    (root / "tests").mkdir(exist_ok=True)
    return root


def record(boundary: str, outcome: str) -> None:
    STATS[boundary]["examples"] += 1
    STATS[boundary]["outcomes"][outcome] += 1


# --------------------------------------------------------------------------- [tool.mlprop]


@fuzz_settings(1)
@given(data=INPUTS)
def test_fuzz_tool_mlprop_section(data: bytes):
    root = project("config")
    path = root / "pyproject.toml"
    path.write_bytes(data)
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        parsed = None
    config = check_reader("[tool.mlprop]", lambda p: read_config(p.parent), path)
    if config is None:  # an error: it named the file; a section error names the section
        with pytest.raises(ConfigError) as info:
            read_config(root)
        if parsed is not None:
            assert "[tool.mlprop]" in str(info.value), str(info.value)
        return
    assert set(config.values) <= set(KEYS)
    if "examples_scale" in config.values:
        parse_scale(config.values["examples_scale"])  # the plugin accepts it
    if "profile" in config.values:
        profile_name(config.values["profile"])


@pytest.mark.parametrize(("value", "expected", "actual"), [
    ("0", "expected an integer >= 1", "got 0"),
    ("-3", "expected an integer >= 1", "got -3"),
    ('"4"', "expected an integer (", "got str '4'"),
    ("true", "expected an integer (", "got bool True"),
    ("2.0", "expected an integer (", "got float 2.0"),
])
def test_audit_shards_must_be_a_positive_integer(tmp_path: Path, value: str, expected: str,
                                                 actual: str):
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.mlprop]\naudit_shards = {value}\n")
    with pytest.raises(ConfigError) as info:
        read_config(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: [tool.mlprop] audit_shards: {expected}"), message
    assert actual in message and len(message.splitlines()) == 1
    for good in (1, 8):
        path.write_text(f"[tool.mlprop]\naudit_shards = {good}\n")
        assert read_config(tmp_path).get("audit_shards") == good


# --------------------------------------------------------------------------- mlprop init


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


def lines_in_order(old: str, new: str) -> bool:
    """Every line of ``old`` appears in ``new``, in the same order (insertions only)."""
    remaining = iter(new.splitlines())
    return all(any(line == candidate for candidate in remaining)
               for line in old.splitlines())


def contains(new: object, old: object) -> bool:
    """``new`` holds every key and value of ``old`` (tables may have gained keys)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and contains(new[k], v)
                                              for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(
            contains(n, o) for n, o in zip(new, old, strict=True))
    if isinstance(old, float) and old != old:  # nan
        return isinstance(new, float) and new != new
    return new == old


@fuzz_settings(1)
@given(data=INPUTS, force=st.booleans())
def test_fuzz_init_input(data: bytes, force: bool):
    root = project("init")
    shutil.rmtree(root / ".github", ignore_errors=True)
    path = root / "pyproject.toml"
    path.write_bytes(data)
    before = snapshot(root)
    try:
        plan = plan_init(root, force=force)
    except InitError as exc:
        assert str(path) in str(exc) or str(root) in str(exc), str(exc)
        assert snapshot(root) == before  # nothing written
        record("mlprop init", f"error: {type(exc).__name__}")
        return
    write_plan(plan)
    written = path.read_bytes()
    new = tomllib.loads(written.decode("utf-8"))  # the result always parses
    old_text = data.decode("utf-8")
    old = tomllib.loads(old_text)
    old_tool = old.get("tool", {})
    replaced = {k for k in ("mlprop", "mutmut") if force and k in old_tool}
    if not replaced:  # --force drops the lines of the sections it replaces
        assert lines_in_order(old_text, written.decode("utf-8"))
    kept_old = {**old, "tool": {k: v for k, v in old_tool.items() if k not in replaced}}
    assert contains(new, kept_old)
    wrote = {key for key in ("mlprop", "mutmut")
             if any(c.startswith(f"[tool.{key}]") for c in plan.changes)}
    if "mlprop" in wrote:
        assert read_config(root).get("target") == "pkg.mlprop_target:target"
    if wrote == {"mlprop", "mutmut"}:
        assert mutation.load_config(root).source_paths == ("src/pkg",)
    assert (root / WORKFLOW_PATH).is_file()
    assert plan_init(root).pyproject_text is None  # a rerun keeps what is there
    prefix = written.startswith(data)
    record("mlprop init", "valid: original is a prefix" if prefix or not wrote
           else "valid: sections inserted, original lines kept in order")


def test_init_on_an_inline_tool_table_exits_2_and_writes_nothing(tmp_path: Path, capsys):
    from mlprop import cli

    root = project("inline")
    shutil.rmtree(root / ".github", ignore_errors=True)
    (root / "pyproject.toml").write_text('tool = {black = {line-length = 88}}\n')
    before = snapshot(root)
    assert cli.main(["init", "--dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(root / "pyproject.toml") in err, err
    assert snapshot(root) == before


def test_init_keeps_crlf_line_ends_byte_for_byte():
    root = project("crlf")
    shutil.rmtree(root / ".github", ignore_errors=True)
    original = b'# mine\r\n[project]\r\nname = "pkg"\r\n'
    (root / "pyproject.toml").write_bytes(original)
    write_plan(plan_init(root, force=True))
    assert (root / "pyproject.toml").read_bytes().startswith(original)


# --------------------------------------------------------------------------- [tool.mutmut]


def load_mutmut(path: Path) -> mutation.MutmutConfig:
    """``load_config`` with its AuditError (exit 2 in the CLI) seen as an mlprop error."""
    try:
        return mutation.load_config(path.parent)
    except mutation.AuditError as exc:
        raise MlpropError(str(exc)) from None


@settings(fuzz_settings(1), phases=[Phase.explicit, Phase.generate])  # no shrinking
@given(data=INPUTS)
def test_fuzz_tool_mutmut_section(data: bytes):
    root = project("mutmut")
    path = root / "pyproject.toml"
    path.write_bytes(data)
    try:
        config = check_reader("[tool.mutmut]", load_mutmut, path)
    except (AssertionError, MlpropError):
        raise
    except Exception as exc:  # name what escaped in the failure
        raise AssertionError(f"load_config let {type(exc).__name__} escape: {exc}") from exc
    if config is not None:
        for name in ("source_paths", "only_mutate", "do_not_mutate", "also_copy",
                     "pytest_add_cli_args", "test_selection"):
            value = getattr(config, name)
            assert isinstance(value, tuple) and all(isinstance(v, str) for v in value), \
                (name, value)
        assert config.source_paths
        raw = tomllib.loads(data.decode("utf-8"))["tool"]["mutmut"]
        for key in ("source_paths", "paths_to_mutate", "only_mutate", "do_not_mutate",
                    "also_copy", "pytest_add_cli_args", "pytest_add_cli_args_test_selection",
                    "tests_dir"):
            assert not isinstance(raw.get(key), str), f"{key} = {raw[key]!r} read char by char"
