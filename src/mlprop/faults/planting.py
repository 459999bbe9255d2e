"""Helpers the faults share to plant a bug into one component of a correct target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlprop.checks import as_tensor
from mlprop.target import Augmentation, Target


def map_augmentations(target: Target, wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
                      ) -> Target:
    """``target`` with every augmentation's function wrapped by ``wrap`` (flags kept)."""
    return target.replace(augmentations={
        name: Augmentation(fn=wrap(aug.fn), label_preserving=aug.label_preserving,
                           per_image=aug.per_image)
        for name, aug in target.augmentations.items()})


def serve(target: Target, model: nn.Module, images: np.ndarray, *, train_mode: bool = False,
          softmax_dim: int = 1) -> np.ndarray:
    """A generic serving path: preprocess -> model -> softmax (the faults vary one step)."""
    inputs = as_tensor(target.preprocess(images))
    model.train(train_mode)
    with torch.no_grad():
        return torch.softmax(model(inputs), dim=softmax_dim).numpy()


class Wrapped(nn.Module):
    """A model whose forward output is post-processed by ``after(logits, inputs)``."""

    def __init__(self, inner: nn.Module, after: Callable[[torch.Tensor, torch.Tensor],
                                                         torch.Tensor]) -> None:
        super().__init__()
        self.inner = inner
        self.after = after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.inner(x), x)


def wrap_model(target: Target, after: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               ) -> Target:
    """``target`` whose models post-process their logits with ``after(logits, inputs)``."""
    return target.replace(build_model=lambda seed: Wrapped(target.build_model(seed), after))


def valid_batch(target: Target, images: Any) -> bool:
    """Whether ``images`` passes the schema (the orientation bugs sit after validation)."""
    return isinstance(images, np.ndarray) and not target.schema.image_violations(images)


def sides_swapped(target: Target, images: Any) -> Any:
    """``images`` with height and width swapped (each image transposed), in its layout."""
    if not valid_batch(target, images):
        return images
    return np.ascontiguousarray(np.swapaxes(images, *target.schema.side_axes))
