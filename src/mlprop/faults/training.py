"""Faults in the user's own training code (``Target.train``), wrapped from outside.

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlprop.faults.catalogue import fault
from mlprop.target import Target


def _trains(target: Target) -> bool:
    return target.train is not None


def _trains_from_build_model(target: Target) -> bool:
    return target.train is not None and target.build_model is not None


@fault("training", "test_train_same_seed_gives_identical_weights", applies=_trains)
def train_draws_from_the_global_rng(target: Target) -> Target:
    """The training loop draws its randomness from the global RNG instead of the seed (an
    unseeded ``DataLoader(shuffle=True)``): the seed it is given does not fix the result."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        drawn = int(torch.randint(0, 2**31 - 1, ()).item())
        return original(images, labels, seed=drawn, epochs=epochs)

    return target.replace(train=train)


@fault("training", "test_train_different_seeds_give_different_weights", applies=_trains)
def train_ignores_its_seed(target: Target) -> Target:
    """The seed is accepted but never used (a hard-coded ``torch.manual_seed(0)``): every
    seed of an experiment is the same run."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        return original(images, labels, seed=0, epochs=epochs)

    return target.replace(train=train)


@fault("training", "test_train_leaves_the_callers_arrays_untouched", applies=_trains)
def train_normalises_the_callers_images_in_place(target: Target) -> Target:
    """The loop rescales the caller's image array in place (``images //= 2`` on the data set
    it was given) before training on it: the data changes under the rest of the program."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        np.floor_divide(images, 2, out=images)
        return original(images, labels, seed=seed, epochs=epochs)

    return target.replace(train=train)


@fault("training", "test_train_learns_a_separable_set", applies=_trains)
def train_shuffles_labels_apart_from_images(target: Target) -> Target:
    """Shuffles the labels with one permutation and the images with another (two unseeded
    shuffles, or a shuffle of one array only): the model learns noise."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        order = np.random.default_rng(seed).permutation(len(labels))
        return original(images, np.asarray(labels)[order], seed=seed, epochs=epochs)

    return target.replace(train=train)


def _train_under_global_hooks(target: Target, *registrations: Callable[[], Any]) -> Target:
    """The target with ``train`` run while torch's global hooks are in place: each of
    ``registrations`` registers one and returns its handle; all are removed when ``train``
    returns or raises (a fault planted inside the user's own loop, which stays unchanged)."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        handles = [register() for register in registrations]
        try:
            return original(images, labels, seed=seed, epochs=epochs)
        finally:
            for handle in handles:
                handle.remove()

    return target.replace(train=train)


@fault("training", "test_train_learns_a_separable_set", applies=_trains)
def train_optimizer_never_steps(target: Target) -> Target:
    """``optimizer.step()`` is never reached (dropped, or indented under a condition that is
    never true, such as ``if step % accumulate == 0`` with an off-by-one): the loss is
    computed and back-propagated, but the model keeps its initial weights. Planted by global
    optimizer step hooks that put every parameter back as it was before the step while the
    target's ``train`` runs."""
    from torch.optim.optimizer import (
        register_optimizer_step_post_hook,
        register_optimizer_step_pre_hook,
    )

    before: dict[int, list[torch.Tensor]] = {}

    def remember(optimizer, args, kwargs):
        before[id(optimizer)] = [p.detach().clone() for group in optimizer.param_groups
                                 for p in group["params"]]

    def undo(optimizer, args, kwargs):
        saved = before.pop(id(optimizer))
        with torch.no_grad():
            for parameter, value in zip((p for group in optimizer.param_groups
                                         for p in group["params"]), saved, strict=True):
                parameter.copy_(value)

    return _train_under_global_hooks(target, lambda: register_optimizer_step_pre_hook(remember),
                                     lambda: register_optimizer_step_post_hook(undo))


@fault("training", "test_train_learns_a_separable_set", applies=_trains)
def train_with_a_zero_learning_rate(target: Target) -> Target:
    """The learning rate is zero (a schedule that decays to 0 before the first step, a
    ``lr=config.lr`` read from a key that is missing and defaults to 0): every step moves the
    weights by nothing. Planted by a global optimizer step pre-hook that sets every parameter
    group's ``lr`` to 0 while the target's ``train`` runs."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def zero_rate(optimizer, args, kwargs):
        for group in optimizer.param_groups:
            group["lr"] = 0.0

    return _train_under_global_hooks(target, lambda: register_optimizer_step_pre_hook(zero_rate))


@fault("training", "test_train_moves_every_trainable_parameter",
       applies=_trains_from_build_model)
def train_leaves_a_layer_out_of_the_optimizer(target: Target) -> Target:
    """One layer's parameters are left out of the optimizer (``Adam(model.head.parameters())``
    or a layer added after the optimizer was built): it keeps its initial weights. Planted by
    restoring, after the real loop, the first layer's trainable weights from
    ``build_model(seed)`` (the initialisation the reference loops start from)."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        model = original(images, labels, seed=seed, epochs=epochs)
        initial = dict(target.build_model(seed).named_modules())
        for name, module in model.named_modules():
            own = {key: p for key, p in module.named_parameters(recurse=False)
                   if p.requires_grad}
            if own and name in initial:
                with torch.no_grad():
                    for key, parameter in own.items():
                        parameter.copy_(getattr(initial[name], key))
                break
        return model

    return target.replace(train=train)


def _checkpoints(target: Target) -> bool:
    return target.save_model is not None and target.load_model is not None and (
        target.trained_model is not None or target.build_model is not None)


def _model_to_checkpoint(target: Target) -> nn.Module:
    return target.trained_model() if target.trained_model is not None else target.build_model(0)


def _has_batch_norm(target: Target) -> bool:
    """Whether the target's network has batch-norm layers: read from an untrained
    ``build_model(0)`` where the target has one (the same layers, and no training just to
    decide whether the fault applies: the docs build and the catalogue check ask this),
    else from ``trained_model()``."""
    if not _checkpoints(target):
        return False
    model = (target.build_model(0) if target.build_model is not None
             else target.trained_model())
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


@fault("training", "test_load_model_after_save_model_restores_weights_buffers_and_outputs",
       applies=_has_batch_norm)
def checkpoint_without_batch_norm_statistics(target: Target) -> Target:
    """The checkpoint stores the parameters but not the buffers (``{n: p for n, p in
    model.named_parameters()}``): a restored model normalises with fresh batch-norm
    statistics (mean 0, variance 1) instead of the learnt ones."""
    import copy

    original = target.save_model

    def save_model(model, path):
        stripped = copy.deepcopy(model)
        for module in stripped.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
        original(stripped, path)

    return target.replace(save_model=save_model)


@fault("training", "test_load_model_after_save_model_restores_weights_buffers_and_outputs",
       applies=_checkpoints)
def checkpoint_saved_in_half_precision(target: Target) -> Target:
    """Saves the weights as float16 "to halve the file" and loads them back into float32:
    every restored weight is rounded, and the served model is not the one that was tested."""
    import copy

    original = target.save_model

    def save_model(model, path):
        rounded = copy.deepcopy(model)
        with torch.no_grad():
            for value in rounded.state_dict().values():
                if value.is_floating_point():
                    value.copy_(value.half().float())
        original(rounded, path)

    return target.replace(save_model=save_model)


def _checkpoints_from_build_model(target: Target) -> bool:
    return _checkpoints(target) and target.build_model is not None


@fault("training", "test_a_damaged_checkpoint_does_not_load_silently",
       applies=_checkpoints_from_build_model)
def checkpoint_without_integrity_check(target: Target) -> Target:
    """Writes the checkpoint with plain ``torch.save(model.state_dict(), path)`` and reads it
    with ``torch.load(path, weights_only=True)``: no checksum, so a flipped bit in a tensor
    loads silently into a model nobody trained."""

    def save_model(model, path):
        torch.save(model.state_dict(), path)

    def load_model(path):
        model = target.build_model(0)
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()

    return target.replace(save_model=save_model, load_model=load_model)


@fault("training", "test_train_resets_gradients_between_optimizer_steps", applies=_trains)
def train_never_resets_gradients(target: Target) -> Target:
    """``optimizer.zero_grad()`` (and ``model.zero_grad()``) dropped from the loop: every
    step follows the sum of all the gradients so far. Planted by making both no-ops while the
    target's own ``train`` runs."""
    original = target.train

    def train(images, labels, *, seed, epochs):
        saved = torch.optim.Optimizer.zero_grad, nn.Module.zero_grad
        torch.optim.Optimizer.zero_grad = lambda self, set_to_none=True: None
        nn.Module.zero_grad = lambda self, set_to_none=True: None
        try:
            return original(images, labels, seed=seed, epochs=epochs)
        finally:
            torch.optim.Optimizer.zero_grad, nn.Module.zero_grad = saved

    return target.replace(train=train)


@fault("training", "test_train_runs_the_forwards_it_trains_on_in_training_mode",
       applies=_trains)
def train_runs_in_eval_mode(target: Target) -> Target:
    """The loop never gets the model back into training mode (``model.train()`` forgotten
    after an evaluation pass, or a model built and ``.eval()``-ed before the loop): dropout
    is off and batch norm uses its running statistics while the model trains. Planted by
    switching every module to eval mode before its forward while the target's ``train``
    runs."""

    def to_eval(module, args):
        module.training = False

    return _train_under_global_hooks(
        target, lambda: torch.nn.modules.module.register_module_forward_pre_hook(to_eval))


def _has_split(target: Target) -> bool:
    return target.training_data is not None and target.holdout is not None


@fault("training", "test_no_holdout_image_is_in_the_training_data", applies=_has_split)
def holdout_leaks_into_training_data(target: Target) -> Target:
    """Some holdout images are also in the training data: a few as exact copies, a few
    shifted by one pixel (a split made after augmentation or deduplication)."""
    from mlprop.training_data import training_batches

    def training_data():
        images, labels = target.holdout()
        batches = list(training_batches(target))
        sides = target.schema.side_axes
        shifted = np.roll(images[3:6], 1, axis=sides[1])
        extra = np.concatenate([images[:3], shifted])
        return [*batches, (extra, np.asarray(labels[:6]))]

    return target.replace(training_data=training_data)
