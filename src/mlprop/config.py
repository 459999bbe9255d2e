"""The ``[tool.mlprop]`` section of a project's ``pyproject.toml``, validated.

Invariant: every key is known and has the documented type; anything else is a
:class:`ConfigError` naming the file, the key, what was expected and what was found (a typo
such as ``targt`` must not silently fall back to the default target).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlprop.errors import MlpropError

__all__ = ["KEYS", "ConfigError", "ProjectConfig", "read_config", "read_pyproject"]

COMPONENTS = ("preprocess", "augment", "model", "training", "predict", "metamorphic",
              "attribution")
"""The suite's components, in the order they run (along the data flow, cheapest first)."""

KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "target": (str, "'module:attribute' of your Target"),
    "profile": (str, "the mlprop profile: ci, dev, thorough or mutmut"),
    "suite": (bool, "true: plain `pytest` in this project also runs mlprop's properties"),
    "components": (list, "a list of components to run: " + ", ".join(COMPONENTS)),
    "examples_scale": ((int, float, dict),
                       "a number, or a table component -> number, scaling the examples"),
    "equivalents": (str, "path of the reviewed equivalent-mutant list"),
    "mlflow": (bool, "true: check, audit, bench compare and monitor log an MLflow run"),
    "audit_shards": (int, "an integer >= 1: the N of the nightly `mlprop audit --shard K/N` "
                     "matrix"),
}


class ConfigError(MlpropError, ValueError):
    """A bad ``[tool.mlprop]`` section (or an unreadable pyproject.toml)."""


@dataclass(frozen=True)
class ProjectConfig:
    """The validated section; ``path`` is None when there is no pyproject.toml."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _type_name(kind: type | tuple[type, ...]) -> str:
    if kind is int:  # alone, not as one of the number types: 2.0 is not a count
        return "an integer"
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {bool: "a boolean", str: "a string", list: "a list", int: "a number",
             float: "a number", dict: "a table"}
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def validate(section: Any, where: str) -> dict[str, Any]:
    """Check a ``[tool.mlprop]`` table; returns it as a dict."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [tool.mlprop] must be a table, got "
                          f"{type(section).__name__}")
    for key, value in section.items():
        if key not in KEYS:
            raise ConfigError(f"{where}: [tool.mlprop] unknown key {key!r} (known: "
                              f"{', '.join(KEYS)})")
        kind, meaning = KEYS[key]
        # a bool is an int to isinstance: `suite = 1` or `examples_scale = true` are typos
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ConfigError(f"{where}: [tool.mlprop] {key}: expected {_type_name(kind)} "
                              f"({meaning}), got {type(value).__name__} {value!r}")
    scale = section.get("examples_scale", {})
    for name, number in scale.items() if isinstance(scale, dict) else [("", scale)]:
        if name and name not in COMPONENTS:
            raise ConfigError(f"{where}: [tool.mlprop] examples_scale: expected component "
                              f"names from {', '.join(COMPONENTS)}, got {name!r}")
        if isinstance(number, bool) or not isinstance(number, int | float) \
                or not 0 < number <= 100:  # NaN fails the comparison too
            raise ConfigError(f"{where}: [tool.mlprop] examples_scale{'.' + name if name else ''}"
                              f": expected a number in (0, 100], got {number!r}")
    shards = section.get("audit_shards")
    if isinstance(shards, int) and shards < 1:  # the type was checked above
        raise ConfigError(f"{where}: [tool.mlprop] audit_shards: expected an integer >= 1 "
                          f"(the N of the nightly audit matrix), got {shards!r}")
    profile = section.get("profile")
    if profile is not None:
        from mlprop.profiles import ProfileError, profile_name

        try:
            profile_name(profile)
        except ProfileError as exc:
            raise ConfigError(f"{where}: [tool.mlprop] profile: {exc}") from None
    components = section.get("components")
    if components is not None:
        unknown = [c for c in components if c not in COMPONENTS]
        if unknown:
            raise ConfigError(f"{where}: [tool.mlprop] components: expected names from "
                              f"{', '.join(COMPONENTS)}, got {unknown!r}")
    return dict(section)


def read_pyproject(path: Path) -> dict[str, Any]:
    """A pyproject.toml parsed; unreadable or invalid TOML is a :class:`ConfigError`
    naming the file."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def read_config(directory: Path) -> ProjectConfig:
    """The ``[tool.mlprop]`` section of ``directory/pyproject.toml`` (empty if absent)."""
    path = Path(directory) / "pyproject.toml"
    if not path.is_file():
        return ProjectConfig()
    tool = read_pyproject(path).get("tool", {})
    if not isinstance(tool, dict) or "mlprop" not in tool:
        return ProjectConfig(path)
    return ProjectConfig(path, validate(tool["mlprop"], str(path)))
