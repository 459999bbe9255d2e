"""mkdocs hook: the reference pages, generated from the code at every build.

Invariant: the reference lists exactly what the code has (every property the suite collects,
every field of the target contract, every ``mlprop`` command and option, every
``[tool.mlprop]`` key), read from the code when the site is built, so the documentation can
never drift from the release it describes. Nothing here is copied by hand: a new property,
field, option or key appears in the next build, and one without a description (a property
without a docstring, a Target field without its ``#:`` comment) fails the build naming it.

The pages are added to the site as generated files (``reference/properties.md``,
``target.md``, ``commands.md``, ``configuration.md``); they are never written into
``docs/pages``. Their anchors are part of the documentation's interface (the failure
messages and the prose pages link to them): ``properties.md#<property name>``,
``target.md#<field>``, ``commands.md#mlprop-<sub>`` and ``configuration.md#<key>``.

The collection and rendering functions are pure and importable (the tests load this file with
``importlib.util.spec_from_file_location``); only :func:`on_files` touches mkdocs.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import importlib
import inspect
import io
import re
import sys
import textwrap
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import ModuleType
from typing import Any

REFERENCE_TARGETS = ("mlprop.digits:target", "mlprop.colour:target")
"""The reference targets whose catalogue faults the properties page lists."""

GENERATED_PAGES = ("reference/properties.md", "reference/target.md", "reference/commands.md",
                   "reference/configuration.md")
"""The pages this hook generates (``src_uri`` inside ``docs_dir``)."""

CONTRACT_CLASSES = ("Target", "Augmentation", "ImageSchema")
"""The dataclasses of the target contract, in page order (``Target``'s fields get bare
anchors, the others ``<class>-<field>``)."""


class ReferenceError(Exception):
    """The code lacks something the reference needs (a docstring, a field description)."""


# --- properties -------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A statistical threshold a property reads: its name and default (``default`` is the
    rendered value, or where the default is computed)."""

    name: str
    default: str


@dataclass(frozen=True)
class PropertyInfo:
    """One property of the suite, as the properties page shows it."""

    name: str
    component: str
    module: str
    doc: str
    caught_by: Mapping[str, tuple[str, ...]]
    """Reference target spec -> the catalogue faults that this property catches there."""
    cost: int
    cap: int | None
    examples: Mapping[str, int]
    """Profile -> the number of examples the property runs under it (cap applied)."""
    thresholds: tuple[Threshold, ...]
    fields_read: tuple[str, ...]
    """Numeric Target fields (``min_accuracy``-style floors) the property reads."""


def component_of(module_name: str) -> str:
    """``mlprop.properties.test_preprocess`` -> ``preprocess`` (as the plugin groups them)."""
    return module_name.rsplit(".", 1)[-1].removeprefix("test_")


@functools.cache
def _module_functions(module_name: str) -> Mapping[str, ast.FunctionDef]:
    """Every ``def`` in an imported module's source by name (a module-level one wins over a
    nested one of the same name); empty when the module has no Python source."""
    try:
        tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    except (KeyError, OSError, TypeError):
        return {}
    found: dict[str, ast.FunctionDef] = {}
    for node in (*tree.body, *ast.walk(tree)):
        if isinstance(node, ast.FunctionDef):
            found.setdefault(node.name, node)
    return found


def _function_node(function: Callable[..., Any]) -> tuple[ast.FunctionDef, ModuleType] | None:
    """The ``def`` of ``function`` in its module's source (wrappers such as Hypothesis's
    ``@given`` are looked through by name), or None when it has no Python source."""
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    node = _module_functions(module.__name__).get(getattr(function, "__name__", "")) if (
        module is not None) else None
    return (node, module) if node is not None else None


def _bind(node: ast.FunctionDef, call: ast.Call, values: Mapping[str, str]
          ) -> dict[str, str]:
    """The helper's parameters that ``call`` gives a string constant (or a string bound in
    the caller), by name."""
    params = [arg.arg for arg in (*node.args.posonlyargs, *node.args.args)]
    bound: dict[str, str] = {}
    for param, arg in zip(params, call.args, strict=False):
        text = _string(arg, values)
        if text is not None:
            bound[param] = text
    for keyword in call.keywords:
        text = _string(keyword.value, values)
        if keyword.arg is not None and text is not None:
            bound[keyword.arg] = text
    return bound


def _string(node: ast.expr, values: Mapping[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return values.get(node.id)
    return None


def _default_of(expr: ast.expr, module: ModuleType, values: Mapping[str, str],
                where: str) -> str:
    """The value of a ``threshold(name, default)`` call's default, evaluated in the module
    it is written in (with the helper's string arguments bound)."""
    try:
        value = eval(compile(ast.Expression(body=expr), where, "eval"),
                     vars(module), dict(values))
    except Exception as exc:
        raise ReferenceError(f"{where}: cannot evaluate the default of a threshold "
                             f"({ast.unparse(expr)}): {exc}") from None
    return repr(value)


def thresholds_and_fields(function: Callable[..., Any], numeric_fields: Iterable[str],
                          ) -> tuple[tuple[Threshold, ...], tuple[str, ...]]:
    """The thresholds ``function`` reads and the numeric Target fields it reads as
    ``target.<field>``, found in its source and in the mlprop functions it calls by name
    (followed transitively, each once per set of string arguments).

    A threshold is a call ``<x>.threshold("name", default)`` (the default evaluated where it
    is written, e.g. ``DEFAULTS[name]`` inside a helper ``_threshold(target, name)``) or a
    lookup ``<x>.thresholds.get("name")`` (its default computed by the function it is in).
    A call whose name is not a string the analysis can see fails loudly: the reference
    would otherwise leave that threshold out."""
    numeric = set(numeric_fields)
    found: dict[str, Threshold] = {}
    fields: dict[str, None] = {}
    seen: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
    queue: list[tuple[Callable[..., Any], dict[str, str]]] = [(function, {})]
    while queue:
        current, values = queue.pop(0)
        located = _function_node(current)
        if located is None:
            continue
        node, module = located
        key = (module.__name__, node.name, tuple(sorted(values.items())))
        if key in seen:
            continue
        seen.add(key)
        where = f"{module.__name__}.{node.name}"
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                    and sub.value.id == "target" and sub.attr in numeric):
                fields.setdefault(sub.attr)
            if not isinstance(sub, ast.Call):
                continue
            func = sub.func
            if isinstance(func, ast.Attribute) and func.attr == "threshold":
                name = _string(sub.args[0], values) if sub.args else None
                if name is None or len(sub.args) < 2:
                    raise ReferenceError(f"{where}: a threshold call the reference cannot "
                                         f"read: {ast.unparse(sub)}")
                found.setdefault(name, Threshold(
                    name, _default_of(sub.args[1], module, values, where)))
            elif (isinstance(func, ast.Attribute) and func.attr == "get"
                  and isinstance(func.value, ast.Attribute)
                  and func.value.attr == "thresholds" and sub.args):
                name = _string(sub.args[0], values)
                if name is not None:
                    found.setdefault(name, Threshold(name, f"computed by `{where}`"))
            elif isinstance(func, ast.Name | ast.Attribute):
                callee = _callee(func, module)
                if (inspect.isfunction(callee)
                        and getattr(callee, "__module__", "").startswith(
                            ("mlprop", "properties"))):
                    helper = _function_node(callee)
                    bound = _bind(helper[0], sub, values) if helper else {}
                    queue.append((callee, bound))
    return tuple(found.values()), tuple(fields)


def _callee(func: ast.Name | ast.Attribute, module: ModuleType) -> Any:
    """What a call's ``name`` or ``package_module.name`` refers to in ``module`` (None when
    it is neither a name of the module nor an attribute of a module it imported)."""
    if isinstance(func, ast.Name):
        return vars(module).get(func.id)
    owner = vars(module).get(func.value.id) if isinstance(func.value, ast.Name) else None
    return getattr(owner, func.attr, None) if inspect.ismodule(owner) else None


def caught_by(name: str, faults: Iterable[Any], targets: Mapping[str, Any],
              ) -> dict[str, tuple[str, ...]]:
    """Per reference target spec, the faults that catch property ``name`` there: those that
    apply to the target (``applies`` None or true) and name the property in their catches
    for it (``catches_on`` of the target's name, else ``catches``)."""
    result: dict[str, tuple[str, ...]] = {}
    for spec, target in targets.items():
        result[spec] = tuple(
            fault.name for fault in faults
            if (fault.applies is None or fault.applies(target))
            and name in fault.catches_for(target))
    return result


def collect_properties(properties: Mapping[str, Callable[..., Any]], faults: Iterable[Any],
                       targets: Mapping[str, Any]) -> list[PropertyInfo]:
    """Every property of ``properties`` (name -> test function, as
    ``mlprop.faults.sweep.load_properties`` gives them) with what the page shows.

    Raises :class:`ReferenceError` naming every property without a docstring."""
    from mlprop.profiles import CAP_ATTRIBUTE, PROFILES, cost_of, property_settings
    from mlprop.target import Target

    numeric = [f.name for f in dataclasses.fields(Target)
               if f.type in ("float", "int", float, int)]
    faults = list(faults)
    missing = [name for name, prop in properties.items() if not inspect.getdoc(prop)]
    if missing:
        raise ReferenceError("properties without a docstring (the reference shows it as the "
                             "invariant): " + ", ".join(missing))
    infos = []
    for name, prop in properties.items():
        thresholds, fields = thresholds_and_fields(prop, numeric)
        infos.append(PropertyInfo(
            name=name, component=component_of(prop.__module__), module=prop.__module__,
            doc=inspect.getdoc(prop) or "", caught_by=caught_by(name, faults, targets),
            cost=cost_of(prop), cap=getattr(prop, CAP_ATTRIBUTE, None),
            examples={profile: property_settings(prop, profile).max_examples
                      for profile in PROFILES},
            thresholds=thresholds, fields_read=fields))
    return infos


def _doc_markdown(doc: str) -> str:
    """A docstring as Markdown: reST's ``code`` and ``:role:`name``` become `code`; the rest
    is kept."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", doc).replace("``", "`")


def render_properties(infos: Sequence[PropertyInfo], components: Sequence[str]) -> str:
    """The properties page: one section per component (in suite order), one entry per
    property with the anchor ``#<name>``."""
    rank = {name: index for index, name in enumerate(components)}
    lines = ["# Properties", "",
             f"The {len(infos)} properties of mlprop's suite (`mlprop.properties`), by "
             "component in the order they run. Each entry gives the invariant (the "
             "property's docstring), the faults of mlprop's catalogue that it catches on the "
             "reference targets (`mlprop faults` builds the full kill matrix), its cost rank "
             "and examples per profile, and the thresholds a target may override with "
             "`Target(thresholds={...})` ([thresholds](target.md#thresholds)).",
             "", "*Generated from the code at build time.*", ""]
    by_component: dict[str, list[PropertyInfo]] = {}
    for info in sorted(infos, key=lambda i: rank.get(i.component, len(rank))):
        by_component.setdefault(info.component, []).append(info)
    for component, entries in by_component.items():
        lines += [f"## {component}", "",
                  f"`mlprop.properties.test_{component}`; select it with "
                  f"`--mlprop-components {component}` or `-m mlprop_{component}`.", ""]
        for info in entries:
            lines += [f"### `{info.name}` {{#{info.name}}}", "", _doc_markdown(info.doc), ""]
            lines.append("**Caught by** (catalogue faults, per reference target):")
            lines.append("")
            for spec, names in info.caught_by.items():
                shown = ", ".join(f"`{n}`" for n in names) if names else "none on this target"
                lines.append(f"- `{spec}`: {shown}")
            lines.append("")
            examples = ", ".join(f"{profile.removeprefix('mlprop-')} {count}"
                                 for profile, count in info.examples.items())
            cap = f" (capped at {info.cap})" if info.cap is not None else ""
            lines += [f"**Cost rank:** {info.cost}{cap}. **Examples per profile:** "
                      f"{examples}.", ""]
            if info.thresholds:
                shown = ", ".join(f"`{t.name}` (default {t.default})" for t in info.thresholds)
                lines += [f"**Thresholds:** {shown}.", ""]
            if info.fields_read:
                shown = ", ".join(f"[`{f}`](target.md#{f})" for f in info.fields_read)
                lines += [f"**Target fields it compares against:** {shown}.", ""]
    return "\n".join(lines)


# --- target contract ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    """One field of a contract dataclass."""

    owner: str
    name: str
    type: str
    default: str | None
    """``None``: required."""
    description: str

    @property
    def anchor(self) -> str:
        return self.name if self.owner == "Target" else f"{self.owner.lower()}-{self.name}"


def field_comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment block above each field of ``cls`` (Sphinx's attribute-comment
    convention) or a trailing ``# ...`` comment on its line, by field name."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
    lines = source.splitlines()
    result: dict[str, str] = {}
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        block: list[str] = []
        row = node.lineno - 1
        while row >= 1 and lines[row - 1].strip().startswith("#:"):
            block.insert(0, lines[row - 1].strip().removeprefix("#:").strip())
            row -= 1
        trailing = comments.get(node.end_lineno or node.lineno, "")
        if not block and trailing.startswith("#:") and not lines[
                (node.end_lineno or node.lineno) - 1].strip().startswith("#"):
            block = [trailing.lstrip("#:").strip()]
        text = " ".join(part for part in block if part)
        if text:
            result[node.target.id] = text
    return result


def _default_text(field: dataclasses.Field) -> str | None:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return None


def collect_fields(classes: Sequence[type]) -> list[FieldInfo]:
    """Every field of each dataclass in ``classes`` with type, default and description.

    Raises :class:`ReferenceError` naming every field without a description: a new field
    must say what it means before the documentation builds."""
    infos: list[FieldInfo] = []
    undocumented: list[str] = []
    for cls in classes:
        comments = field_comments(cls)
        for field in dataclasses.fields(cls):
            description = comments.get(field.name, "")
            if not description:
                undocumented.append(f"{cls.__name__}.{field.name}")
            type_text = field.type if isinstance(field.type, str) else getattr(
                field.type, "__name__", repr(field.type))
            infos.append(FieldInfo(cls.__name__, field.name, type_text, _default_text(field),
                                   description))
    if undocumented:
        raise ReferenceError(
            "fields of the target contract without a description (write a `#:` comment "
            "above the field in its class): " + ", ".join(undocumented))
    return infos


def render_target(infos: Sequence[FieldInfo], classes: Sequence[type]) -> str:
    """The target page: one section per class, one entry per field (anchor ``#<field>`` for
    Target, ``#<class>-<field>`` for the others)."""
    lines = ["# The target contract", "",
             "Every field of `mlprop.Target` and of the `Augmentation` and `ImageSchema` it "
             "holds, with its type, default and meaning. Only fields without a default are "
             "required. The contract in prose: [the target "
             "contract](../explanation/target-contract.md).", "",
             "*Generated from the code at build time.*", ""]
    for cls in classes:
        doc = _doc_markdown(inspect.getdoc(cls) or "")
        lines += [f"## `{cls.__name__}` {{#{cls.__name__.lower()}}}", "",
                  f"`{cls.__module__}.{cls.__name__}`", "", doc, ""]
        for info in (i for i in infos if i.owner == cls.__name__):
            default = f"`{info.default}`" if info.default is not None else "required"
            lines += [f"### `{info.name}` {{#{info.anchor}}}", "",
                      f"- **Type:** `{info.type}`", f"- **Default:** {default}", "",
                      _doc_markdown(info.description), ""]
    return "\n".join(lines)


# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionInfo:
    """One argument of a command."""

    flags: str
    default: str | None
    """Markdown (a literal in backticks, or words); None: no default worth showing."""
    help: str


@dataclass(frozen=True)
class CommandInfo:
    """One command or subcommand of the ``mlprop`` parser."""

    path: tuple[str, ...]
    usage: str
    help: str
    options: tuple[OptionInfo, ...]
    subcommands: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return "-".join(self.path)


def _option(action: argparse.Action, formatter: argparse.HelpFormatter) -> OptionInfo:
    flags = ", ".join(action.option_strings) or (action.metavar or action.dest)
    if action.option_strings and action.nargs != 0:
        flags += " " + formatter._format_args(action, formatter._get_default_metavar_for_optional(
            action))
    if action.default in (None, argparse.SUPPRESS) or isinstance(
            action, argparse._HelpAction | argparse._VersionAction):
        default = None  # SUPPRESS: left unset unless given (`audit merge` keeps earlier ones)
    elif isinstance(action.default, Path) and action.default == Path.cwd():
        default = "the current directory"
    elif isinstance(action.default, PurePath):
        default = f"`{action.default}`"
    else:
        default = f"`{action.default!r}`"
    return OptionInfo(str(flags), default, formatter._expand_help(action) if action.help else "")


def collect_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("mlprop",),
                     help_text: str | None = None) -> list[CommandInfo]:
    """``parser`` and every subparser under it (recursively: ``mlprop audit merge``), each
    with its usage, help and arguments (those with help suppressed are internal)."""
    formatter = parser._get_formatter()
    options: list[OptionInfo] = []
    children: list[tuple[str, argparse.ArgumentParser, str | None]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            children += [(name, sub, helps.get(name)) for name, sub in action.choices.items()]
            continue
        if action.help is argparse.SUPPRESS:
            continue
        options.append(_option(action, formatter))
    description = parser.description or help_text or ""
    if help_text and parser.description and help_text not in parser.description:
        description = f"{help_text}\n\n{parser.description}"
    info = CommandInfo(path, " ".join(parser.format_usage().split()).removeprefix("usage: "),
                       description, tuple(options), tuple(name for name, _, _ in children))
    found = [info]
    for name, sub, sub_help in children:
        found += collect_commands(sub, (*path, name), sub_help)
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_commands(infos: Sequence[CommandInfo]) -> str:
    """The commands page: one section per command (anchor ``#mlprop-<sub>``)."""
    lines = ["# Commands", "",
             "Every `mlprop` command, subcommand and option, read from the command's "
             "argument parser (`mlprop.cli.build_parser()`); `mlprop COMMAND --help` prints "
             "the same.", "", "*Generated from the code at build time.*", ""]
    for info in infos:
        level = "#" * min(2 + max(len(info.path) - 2, 0), 4)
        lines += [f"{level} `{' '.join(info.path)}` {{#{info.anchor}}}", "",
                  "```text", info.usage, "```", "", _doc_markdown(info.help), ""]
        if info.subcommands:
            shown = ", ".join(f"[`{name}`](#{info.anchor}-{name})" for name in info.subcommands)
            lines += [f"Subcommands: {shown}.", ""]
        if info.options:
            lines += ["| argument | default | meaning |", "|---|---|---|"]
            lines += [f"| `{_cell(o.flags)}` | "
                      f"{_cell(o.default) if o.default is not None else ''} | "
                      f"{_cell(o.help)} |" for o in info.options]
            lines.append("")
    return "\n".join(lines)


# --- configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """One key of ``[tool.mlprop]``."""

    name: str
    type: str
    meaning: str
    default: str | None


def config_defaults() -> dict[str, str]:
    """The defaults of the keys that the code names as constants (the others are unset by
    default, and a boolean key left out is false)."""
    from mlprop.audit.mutation import DEFAULT_EQUIVALENTS
    from mlprop.config import COMPONENTS
    from mlprop.plugin import DEFAULT_TARGET
    from mlprop.profiles import default_profile

    plain, _ = default_profile({})
    ci, _ = default_profile({"CI": "true"})
    return {"target": f"`{DEFAULT_TARGET}`",
            "profile": f"`{plain.removeprefix('mlprop-')}` (`{ci.removeprefix('mlprop-')}` "
                       "when the environment variable `CI` is true)",
            "components": "all: " + ", ".join(f"`{c}`" for c in COMPONENTS),
            "equivalents": f"`{DEFAULT_EQUIVALENTS}` beside the pyproject.toml"}


def collect_keys(keys: Mapping[str, tuple[Any, str]], defaults: Mapping[str, str],
                 ) -> list[KeyInfo]:
    """Every key of ``mlprop.config.KEYS`` with its TOML type, meaning and default."""
    from mlprop.config import _type_name

    infos = []
    for name, (kind, meaning) in keys.items():
        default = defaults.get(name)
        if default is None and kind is bool:
            default = "`false`"
        infos.append(KeyInfo(name, _type_name(kind), meaning, default))
    return infos


def render_configuration(infos: Sequence[KeyInfo]) -> str:
    """The configuration page: one entry per key (anchor ``#<key>``)."""
    lines = ["# Configuration", "",
             "Every key of the `[tool.mlprop]` section of a project's `pyproject.toml` "
             "(`mlprop.config.KEYS`). An unknown key or a value of the wrong type is an error "
             "naming the file and the key.", "", "```toml", "[tool.mlprop]",
             'target = "mypackage.pipeline:target"', "```", "",
             "*Generated from the code at build time.*", ""]
    for info in infos:
        lines += [f"## `{info.name}` {{#{info.name}}}", "", f"- **Type:** {info.type}",
                  f"- **Default:** {info.default or 'not set'}", "",
                  _doc_markdown(info.meaning[:1].upper() + info.meaning[1:]) + ".", ""]
    return "\n".join(lines)


# --- the build --------------------------------------------------------------------------


def generate() -> dict[str, str]:
    """Every generated page, ``src_uri`` -> Markdown, read from the installed mlprop."""
    from mlprop.cli import build_parser
    from mlprop.config import COMPONENTS, KEYS
    from mlprop.faults import CATALOGUE
    from mlprop.faults.sweep import load_properties
    from mlprop.target import load_target

    contract = importlib.import_module("mlprop.target")
    classes = [getattr(contract, name) for name in CONTRACT_CLASSES]
    targets = {spec: load_target(spec) for spec in REFERENCE_TARGETS}
    properties = collect_properties(load_properties(), CATALOGUE.values(), targets)
    return {
        "reference/properties.md": render_properties(properties, COMPONENTS),
        "reference/target.md": render_target(collect_fields(classes), classes),
        "reference/commands.md": render_commands(collect_commands(build_parser())),
        "reference/configuration.md": render_configuration(
            collect_keys(KEYS, config_defaults())),
    }


def on_files(files: Any, config: Any) -> Any:
    """mkdocs event: add the generated reference pages (replacing any file of the same
    name in ``docs_dir``, so a stale hand-made copy can never be published)."""
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    try:
        pages = generate()
    except ReferenceError as exc:
        raise PluginError(f"docs/hooks/reference.py: {exc}") from None
    for src_uri, content in pages.items():
        existing = files.get_file_from_path(src_uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, src_uri, content=content))
    return files
