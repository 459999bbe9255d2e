"""The :class:`~mlprop.target.Target` of a reference pipeline, assembled from its modules.

Invariant: a reference target takes its serving path, holdout, training data and
checkpoints from one pipeline module, all of them, so none can come from the other pipeline
or be left out (the bug it prevents: a target whose ``holdout`` and ``trained_model`` come
from different pipelines, or one that silently lacks part of its training stage).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from mlprop.target import Augmentation, Target


def label_preserving(**fns: Callable[..., Any]) -> dict[str, Augmentation]:
    """``{name: Augmentation(fn, label_preserving=True)}`` in the order given."""
    return {name: Augmentation(fn=fn, label_preserving=True) for name, fn in fns.items()}


def reference_target(name: str, *, pipeline: ModuleType, **parts: Any) -> Target:
    """The target named ``name`` whose ``trained_model``, ``predict``, ``holdout``,
    ``training_data``, ``save_model`` and ``load_model`` are those of the module
    ``pipeline``; ``parts`` are the other :class:`Target` fields, the ones in which the
    reference pipelines differ (schema, preprocess, augmentations, build_model, train,
    min_accuracy, channel_normalization, ...)."""
    return Target(
        name=name,
        trained_model=pipeline.trained_model,
        predict=pipeline.predict,
        holdout=pipeline.holdout,
        training_data=pipeline.training_data,
        save_model=pipeline.save_model,
        load_model=pipeline.load_model,
        **parts,
    )

