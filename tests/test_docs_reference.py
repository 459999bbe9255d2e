"""The documentation site (``docs/``) and the reference it generates from the code.

Catches: a reference that drifts from the code (a property, a Target field, a command option
or a ``[tool.mlprop]`` key added without appearing, or a stale one still listed); a property
without a docstring (the reference shows it as the invariant) or that no catalogue fault
trips on a reference target (the reference would list nothing that it catches); a Target
field without a description; a link or an anchor that leads nowhere (``mkdocs build
--strict`` must fail on it); and a failure message or report whose link misses the
property's entry in the reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from mlprop.checks import PropertyViolation, fail, reproduction
from mlprop.cli import build_parser
from mlprop.config import KEYS
from mlprop.docs_links import DOCS_URL, property_url
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties
from mlprop.plugin import known_thresholds
from mlprop.target import Augmentation, ImageSchema, Target, load_target

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOK = DOCS / "hooks" / "reference.py"
HEADING_ANCHOR = re.compile(r"^#{1,6} .*\{#([^}]+)\}\s*$", re.MULTILINE)


def load_hook() -> ModuleType:
    """``docs/hooks/reference.py`` as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("mlprop_docs_reference_hook", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's names through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    return load_hook()


@pytest.fixture(scope="module")
def properties():
    return load_properties()


@pytest.fixture(scope="module")
def pages(hook) -> dict[str, str]:
    return hook.generate()


def anchors(markdown: str) -> list[str]:
    """The explicit ``{#anchor}`` of every heading, in page order."""
    return HEADING_ANCHOR.findall(markdown)


# --- (a) every property is documented and can fail ----------------------------------------


def test_every_property_has_a_docstring(properties):
    """The docstring is the invariant the reference shows (and the report's "What it
    checks"); tests/test_fault_catalogue.py checks that some fault names every property."""
    missing = [name for name, prop in properties.items() if not inspect.getdoc(prop)]
    assert missing == [], "properties without a docstring"


def test_every_property_is_caught_by_a_fault_that_applies_to_a_reference_target(
        hook, properties):
    """Stronger than being named by a fault: the fault must apply to one of the reference
    targets and name the property for it, or the reference lists no fault for it at all."""
    targets = {spec: load_target(spec) for spec in hook.REFERENCE_TARGETS}
    uncaught = [name for name in properties
                if not any(hook.caught_by(name, CATALOGUE.values(), targets).values())]
    assert uncaught == [], "properties no catalogue fault trips on a reference target"


def test_a_property_without_a_docstring_stops_the_build(hook):
    def test_undocumented(target):
        assert target

    with pytest.raises(hook.ReferenceError, match=r"without a docstring.*test_undocumented"):
        hook.collect_properties({"test_undocumented": test_undocumented}, [], {})


@dataclass(frozen=True)
class _Documented:
    #: The first field,
    #: over two lines.
    first: int
    second: str = "x"  #: the second field
    third: tuple[int, ...] = dataclasses.field(default_factory=tuple)  # a plain comment
    """Not a field comment: the docstring convention is not read."""


def test_field_descriptions_come_from_their_comments_and_a_missing_one_stops_the_build(hook):
    with pytest.raises(hook.ReferenceError, match=r"_Documented\.third$"):
        hook.collect_fields([_Documented])
    assert hook.field_comments(_Documented) == {"first": "The first field, over two lines.",
                                                "second": "the second field"}


def test_every_contract_field_has_a_description(hook):
    infos = hook.collect_fields([Target, Augmentation, ImageSchema])
    assert all(info.description for info in infos)


# --- (b) the generated reference lists exactly what the code has -------------------------


def test_properties_page_lists_exactly_the_suite(pages, properties):
    listed = anchors(pages["reference/properties.md"])
    assert len(listed) == len(set(listed)) == len(properties)
    assert set(listed) == set(properties)


def test_target_page_lists_exactly_the_contract_fields(pages):
    expected = []
    for cls in (Target, Augmentation, ImageSchema):
        prefix = "" if cls is Target else f"{cls.__name__.lower()}-"
        expected += [cls.__name__.lower()] + [prefix + f.name for f in dataclasses.fields(cls)]
    assert anchors(pages["reference/target.md"]) == expected


def _commands(parser: argparse.ArgumentParser, path: str = "mlprop",
              ) -> dict[str, list[argparse.Action]]:
    """Anchor -> the documented arguments (help not suppressed) of every (sub)command."""
    found = {path: []}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_commands(sub, f"{path}-{name}"))
        elif action.help is not argparse.SUPPRESS:
            found[path].append(action)
    return found


def test_commands_page_lists_every_command_and_option(pages):
    commands = _commands(build_parser())
    markdown = pages["reference/commands.md"]
    assert anchors(markdown) == list(commands)
    assert {"mlprop-check", "mlprop-audit-merge", "mlprop-bench-compare"} <= set(commands)
    sections = re.split(HEADING_ANCHOR, markdown)[1:]
    for anchor, body in zip(sections[::2], sections[1::2], strict=True):
        rows = [line for line in body.splitlines() if line.startswith("| `")]
        assert len(rows) == len(commands[anchor]), anchor
        for action, row in zip(commands[anchor], rows, strict=True):
            name = action.option_strings[0] if action.option_strings else (
                action.metavar or action.dest)
            assert row.startswith(f"| `{name}"), (anchor, row)


def test_configuration_page_lists_exactly_the_keys(pages):
    assert anchors(pages["reference/configuration.md"]) == list(KEYS)


def test_the_thresholds_found_are_every_threshold_the_suite_reads(hook, properties):
    """The AST analysis misses none (the plugin's own list of names: the suite modules'
    ``DEFAULTS`` and the model budget's) and invents none, with the defaults as written."""
    numeric = ("min_accuracy",)
    found = {t.name: t.default for prop in properties.values()
             for t in hook.thresholds_and_fields(prop, numeric)[0]}
    assert set(found) == set(known_thresholds())
    for prop in properties.values():
        defaults = getattr(sys.modules[prop.__module__], "DEFAULTS", {})
        for threshold in hook.thresholds_and_fields(prop, numeric)[0]:
            if threshold.name in defaults:
                assert threshold.default == repr(defaults[threshold.name])
    accuracy = properties["test_predict_accuracy_on_holdout_meets_the_floor"]
    assert hook.thresholds_and_fields(accuracy, numeric)[1] == ("min_accuracy",)


# --- (c) the site builds with warnings as errors, and a broken link fails it --------------


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
    for module in ("mkdocs", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]' installs it)")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config), "-d", str(site)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The real docs, built once with ``--strict`` (the build must succeed)."""
    built = tmp_path_factory.mktemp("docs") / "site"
    result = _mkdocs(DOCS / "mkdocs.yml", built)
    assert result.returncode == 0, result.stderr
    return built


def _has_anchor(site: Path, url: str) -> bool:
    page, _, anchor = url.removeprefix(DOCS_URL).partition("#")
    html = site / page / "index.html"
    return html.is_file() and (not anchor or f'id="{anchor}"' in html.read_text("utf-8"))


def test_the_docs_build_strictly_with_every_property_anchor(site, properties):
    for name in properties:
        assert _has_anchor(site, property_url(name)), name
    assert not (DOCS / "pages" / "reference" / "properties.md").exists()  # never written


PAGE_LINK = re.compile(r"page_url\(\s*['\"]([^'\"]+)['\"](?:\s*,\s*['\"]([^'\"]+)['\"])?\s*\)")


def test_every_docs_page_mlprops_messages_name_exists(site):
    """The pages and anchors mlprop's own messages send a user to (``page_url(...)`` in
    src/) exist in the built site: a renamed heading fails here, not in a user's terminal."""
    found = [(match[1], match[2] or "")
             for path in (ROOT / "src" / "mlprop").rglob("*.py")
             for match in PAGE_LINK.finditer(path.read_text(encoding="utf-8"))]
    assert len(found) >= 5
    from mlprop.docs_links import page_url
    missing = [(page, anchor) for page, anchor in found
               if not _has_anchor(site, page_url(page, anchor))]
    assert missing == []


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("site", "__pycache__"))
    index = docs / "pages" / "reference" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](no-such-page.md), "
                     "[lost](properties.md#test_no_such_property)\n", encoding="utf-8")
    result = _mkdocs(docs / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr and "test_no_such_property" in result.stderr


def test_the_documentation_url_is_one_url():
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = yaml.safe_load((DOCS / "mkdocs.yml").read_text(encoding="utf-8"))
    assert project["urls"]["Documentation"] == site["site_url"] == DOCS_URL
    assert property_url("test_x[rotate]") == f"{DOCS_URL}reference/properties/#test_x"


# --- failure messages link to the reference ------------------------------------------------


def test_a_failing_property_links_to_its_reference_entry(properties):
    name = "test_preprocess_is_batch_independent"
    faulty = CATALOGUE["per_batch_normalization"].inject(load_target("mlprop.digits:target"))
    with pytest.raises(PropertyViolation) as info:
        properties[name](target=faulty)
    notes = [line for note in info.value.__notes__ for line in note.splitlines()]
    assert f"reference: {property_url(name)}" in notes


def test_a_reproduction_outside_the_suite_has_no_reference_line():
    with pytest.raises(PropertyViolation) as info, reproduction("t", seed=3):
        fail("an invariant", "this", "that")
    (note,) = info.value.__notes__
    assert note.startswith("Reproduce: target 't' (--mlprop-target ")
    assert note.endswith("); seed=3") and "reference:" not in note


def test_a_users_own_properties_folder_gets_no_reference_line(tmp_path):
    """A user's ``properties/test_*.py`` is not mlprop's suite: its failures carry no link
    to mlprop's documentation (the rule compares folders, as the plugin's is_property)."""
    source = ("from mlprop.checks import fail, reproduction\n"
              "def test_users_own_property():\n"
              "    with reproduction('t', seed=1):\n"
              "        fail('their invariant', 1, 2)\n")
    path = tmp_path / "properties" / "test_user.py"
    path.parent.mkdir()
    path.write_text(source)
    namespace: dict = {"__name__": "properties.test_user"}
    exec(compile(source, str(path), "exec"), namespace)
    with pytest.raises(PropertyViolation) as info:
        namespace["test_users_own_property"]()
    (note,) = info.value.__notes__
    assert "reference:" not in note


def test_generating_the_reference_trains_no_model(tmp_path):
    """The reference asks every fault whether it applies to each reference target; none
    may need a trained model for that (the first CI docs build trained both references,
    minutes on a cold cache)."""
    cache = tmp_path / "cache"
    script = ("import importlib.util, sys\n"
              f"spec = importlib.util.spec_from_file_location('hook', {str(HOOK)!r})\n"
              "hook = importlib.util.module_from_spec(spec)\n"
              "sys.modules['hook'] = hook\n"
              "spec.loader.exec_module(hook)\n"
              "assert len(hook.generate()) == 4\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "MLPROP_CACHE_DIR": str(cache),
                               "OMP_NUM_THREADS": "1"}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not cache.exists() or not any(cache.iterdir())
