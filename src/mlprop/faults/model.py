"""Faults planted in ``Target.build_model``: seeding, eval mode, batch mixing, the head.

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

import torch
from torch import nn

from mlprop.faults.catalogue import fault
from mlprop.faults.planting import (
    wrap_model,
)
from mlprop.target import Target


@fault("model", "test_build_model_same_seed_gives_identical_parameters")
def init_ignores_seed(target: Target) -> Target:
    """Initialises from the global torch RNG: the same seed gives different weights."""
    return target.replace(build_model=lambda seed: target.build_model(
        int(torch.randint(0, 2**31, (1,)))))


@fault("model", "test_build_model_different_seeds_give_different_parameters")
def init_fixed_seed(target: Target) -> Target:
    """Hard-codes ``torch.manual_seed(0)`` in the model: every seed gives one init."""
    return target.replace(build_model=lambda seed: target.build_model(0))


@fault("model", "test_model_forward_is_deterministic_in_eval_mode")
def dropout_active_in_eval(target: Target) -> Target:
    """Applies ``F.dropout(x, training=True)`` in forward, ignoring eval mode."""
    return wrap_model(target, lambda logits, x: nn.functional.dropout(logits, 0.5,
                                                                       training=True))


@fault("model", "test_model_is_batch_independent_in_eval_mode")
def cross_sample_leakage(target: Target) -> Target:
    """Adds the batch mean of the logits to every row (a mean over dim 0)."""
    return wrap_model(target, lambda logits, x: logits + logits.mean(dim=0, keepdim=True))


@fault("model", "test_model_is_permutation_equivariant_in_eval_mode",
       "test_model_is_batch_independent_in_eval_mode")
def rolled_outputs(target: Target) -> Target:
    """Returns the logits rolled by one sample (an off-by-one in batch indexing)."""
    return wrap_model(target, lambda logits, x: torch.roll(logits, 1, dims=0))


@fault("model", "test_model_output_is_one_logit_row_per_image")
def wrong_head_width(target: Target) -> Target:
    """The classifier head has one output too many (num_classes + 1 logits)."""
    return wrap_model(target, lambda logits, x: torch.cat([logits, logits[:, :1]], dim=1))


@fault("model", "test_model_output_is_finite_on_every_valid_input")
def per_sample_standardization_in_forward(target: Target) -> Target:
    """Standardises each input channel by its own std inside forward (instance
    normalisation without an epsilon): NaN on constant images."""

    def after(logits, x):
        spread = x.flatten(2).std(dim=2)
        return logits * (spread / spread).mean(dim=1, keepdim=True)

    return wrap_model(target, after)


class _UnusedLayer(nn.Module):
    def __init__(self, inner: nn.Module, width: int) -> None:
        super().__init__()
        self.inner = inner
        self.extra = nn.Linear(width, width)  # defined, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


@fault("model", "test_every_parameter_receives_a_gradient",
       "test_one_optimizer_step_changes_every_trainable_parameter")
def unused_layer(target: Target) -> Target:
    """Defines a layer in __init__ that forward never calls."""
    width = target.schema.num_classes
    return target.replace(build_model=lambda seed: _UnusedLayer(target.build_model(seed), width))


@fault("model", "test_every_parameter_receives_a_gradient")
def zero_initialized_layer(target: Target) -> Target:
    """Initialises the last layer's weights to zero: no gradient reaches earlier layers."""

    def build(seed):
        model = target.build_model(seed)
        last = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
        return model

    return target.replace(build_model=build)


@fault("model", "test_loss_falls_when_overfitting_one_small_batch")
def input_ignored(target: Target) -> Target:
    """Feeds zeros instead of the input to the network (a mis-wired forward)."""

    class Blind(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(torch.zeros_like(x))

    return target.replace(build_model=lambda seed: Blind(target.build_model(seed)))


@fault("model", "test_state_dict_round_trip_gives_identical_outputs")
def unregistered_state(target: Target) -> Target:
    """Keeps a seeded output scale in a plain tensor attribute, not a buffer: it is lost
    when the state_dict is saved and loaded."""

    class Scaled(nn.Module):
        def __init__(self, inner: nn.Module, seed: int) -> None:
            super().__init__()
            self.inner = inner
            generator = torch.Generator().manual_seed(seed)
            self.scale = 1.0 + torch.rand(1, generator=generator)  # not register_buffer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x) * self.scale

    return target.replace(build_model=lambda seed: Scaled(target.build_model(seed), seed))
