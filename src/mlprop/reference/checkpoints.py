"""A reference pipeline's checkpoints: its manifest fields and the target's ``save_model`` /
``load_model`` over the verified package format (:mod:`mlprop.digits.artifacts`).

Invariants: every package a pipeline writes names its architecture, its raw-image schema and
its preprocessing constants, so a package can be served without the code that trained it;
``load_model`` rebuilds the pipeline's own network and loads only verified weights into it,
so a truncated or altered checkpoint raises :class:`~mlprop.errors.PackageIntegrityError`
instead of serving garbage. The package functions are handed in, not imported: the kit
never imports a pipeline (see :mod:`mlprop.reference`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mlprop.reference.training import TrainConfig
from mlprop.schema import ImageSchema

SavePackage = Callable[..., Path]
"""``save_package(directory, model, *, architecture, metrics, schema, preprocessing, seed,
extra=None) -> Path``."""
LoadPackage = Callable[[str | Path, Callable[[], nn.Module]], tuple[nn.Module, dict[str, Any]]]
"""``load_package(directory, build) -> (model in eval mode, manifest)``."""


def package_fields(architecture: str, schema: ImageSchema, size: int, mean: object,
                   std: object) -> dict[str, object]:
    """The manifest fields that describe how to serve a package: architecture, schema and
    preprocessing (``size``, ``mean``, ``std`` as JSON-ready values)."""
    return {"architecture": architecture, "schema": asdict(schema),
            "preprocessing": {"size": size, "mean": mean, "std": std}}


@dataclass(frozen=True)
class Checkpoints:
    """How one pipeline writes and reads its packages: ``fields`` for every manifest,
    ``build`` the untrained network the weights load into, and the package functions."""

    fields: Mapping[str, object]
    build: Callable[[], nn.Module]
    save_package: SavePackage
    load_package: LoadPackage

    def save_trained(self, path: str | Path, network: nn.Module, metrics: Mapping[str, Any],
                     config: TrainConfig, **extra: object) -> Path:
        """Write a trained network's package: the fields, its test ``metrics``, the seed
        and the whole training ``config``, plus ``extra`` manifest keys."""
        return self.save_package(path, network, **self.fields, metrics=dict(metrics),
                                 seed=config.seed,
                                 extra={"train_config": asdict(config), **extra})

    def save_model(self, network: nn.Module, path: str | Path) -> None:
        """The target's checkpoint writer: ``network`` as a package directory at ``path``
        (safetensors weights with their SHA-256 in the manifest, written atomically)."""
        self.save_package(path, network, **self.fields, metrics={}, seed=None)

    def load_model(self, path: str | Path) -> nn.Module:
        """The target's checkpoint reader: the verified package at ``path``, in eval mode;
        a truncated or altered one raises :class:`PackageIntegrityError`."""
        return self.load_package(path, self.build)[0]
