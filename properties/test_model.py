"""Properties of ``target.build_model(seed)``: an untrained network giving logits."""

from __future__ import annotations

import io

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import mlprop.strategies as gen
from mlprop.budget import MAX_BATCH, memory_guard, model_batch
from mlprop.checks import (
    as_numpy,
    as_tensor,
    assert_close,
    assert_finite,
    assert_shape,
    fail,
    reproduction,
    requires,
)
from mlprop.profiles import examples_at_most

pytestmark = requires("build_model")

ATOL, RTOL = 1e-5, 1e-4
OVERFIT_STEPS = 60
OVERFIT_RATIO = 0.5
OVERFIT_CHECK_EVERY = 10
"""Overfitting one small batch must at least halve the loss in ``OVERFIT_STEPS`` Adam steps."""


def _inputs(target, images):
    return as_tensor(target.preprocess(images))


def _forward_eval(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(inputs)


def _batches(target, **options):
    """Batches sized to the model (:func:`mlprop.budget.model_batch`)."""
    largest = model_batch(target)
    options["min_batch"] = min(options.get("min_batch", 1), largest)
    return gen.images(target.schema, **{"max_batch": largest, **options})


def _distinct_batch(target, data, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` pairwise different images of one shape and labels cycling through the
    classes: a batch of identical images (or labels) can make a correct network's output
    constant (batch norm in train mode over a 1x1 feature map), so the gradient properties
    never draw one."""
    side = target.schema.min_side
    distinct = st.lists(gen.image(target.schema, min_side=side, max_side=side,
                                  kinds=("strokes", "blobs", "lowres", "noise")),
                        min_size=size, max_size=size, unique_by=lambda image: image.tobytes())
    images = np.stack(data.draw(distinct, label="images"))
    return images, np.arange(size, dtype=np.int64) % target.schema.num_classes


@given(data=st.data(), seed=gen.seeds())
def test_model_output_is_one_logit_row_per_image(target, data, seed):
    """forward(preprocess(images)) has shape (N, num_classes) for N >= 1.

    Catches: a classifier head of the wrong width; a flatten over the batch axis."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, images=images, seed=seed), \
            memory_guard(target, "the model", len(images)):
        logits = _forward_eval(target.build_model(seed), _inputs(target, images))
        assert_shape(logits, (len(images), target.schema.num_classes), "model logits")


@given(data=st.data(), seed=gen.seeds())
def test_model_output_is_finite_on_every_valid_input(target, data, seed):
    """Logits are finite for every valid image, all-black and all-white included.

    Catches: a per-sample standardisation inside forward that divides by a zero
    standard deviation on constant images; log of a zero activation."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, images=images, seed=seed), \
            memory_guard(target, "the model", len(images)):
        assert_finite(_forward_eval(target.build_model(seed), _inputs(target, images)),
                      "model logits")


def _parameters(model) -> dict[str, np.ndarray]:
    return {name: as_numpy(p).copy() for name, p in model.state_dict().items()}


@examples_at_most(5)
@given(seed=gen.seeds())
def test_build_model_same_seed_gives_identical_parameters(target, seed):
    """build_model(s) twice gives bit-identical parameters and buffers.

    Catches: initialisation drawn from the global RNG, ignoring the seed."""
    with reproduction(target, seed=seed):
        torch.manual_seed(seed ^ 0x5EED)  # a different global state for each call
        first = _parameters(target.build_model(seed))
        torch.manual_seed(seed ^ 0xF00D)
        second = _parameters(target.build_model(seed))
        for name, value in first.items():
            assert_close(second[name], value, f"build_model({seed}) parameter {name!r} differs "
                                              "between two calls with the same seed")


@examples_at_most(5)
@given(seeds=st.lists(gen.seeds(), min_size=2, max_size=2, unique=True))
def test_build_model_different_seeds_give_different_parameters(target, seeds):
    """Two different seeds give different initial weights.

    Catches: a seed that is accepted but never used (every run starts from one init,
    so 'multiple seeds' in an experiment are one seed)."""
    with reproduction(target, seeds=seeds):
        first = _parameters(target.build_model(seeds[0]))
        second = _parameters(target.build_model(seeds[1]))
        if all(np.array_equal(first[k], second[k]) for k in first if first[k].dtype.kind == "f"):
            fail("build_model ignores its seed", f"different parameters for seeds {seeds}",
                 "identical parameters")


@given(data=st.data(), seed=gen.seeds())
def test_model_forward_is_deterministic_in_eval_mode(target, data, seed):
    """In eval mode two forward passes on the same input are bit-identical.

    Catches: dropout applied with training=True (F.dropout without self.training), noise
    layers that ignore eval mode."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, images=images, seed=seed), \
            memory_guard(target, "the model", len(images)):
        model, inputs = target.build_model(seed), _inputs(target, images)
        assert_close(_forward_eval(model, inputs), _forward_eval(model, inputs),
                     "eval-mode forward differs between two calls")


@given(data=st.data(), seed=gen.seeds())
def test_model_is_batch_independent_in_eval_mode(target, data, seed):
    """In eval mode, row i of forward(batch) equals forward(sample i alone).

    Catches: cross-sample leakage in forward (batch statistics, a mean over dim 0),
    BatchNorm left in train mode."""
    images = data.draw(_batches(target, min_batch=2), label="images")
    with reproduction(target, images=images, seed=seed), \
            memory_guard(target, "the model", len(images)):
        model, inputs = target.build_model(seed), _inputs(target, images)
        batch = _forward_eval(model, inputs)
        for index in range(len(images)):
            assert_close(batch[index:index + 1], _forward_eval(model, inputs[index:index + 1]),
                         f"forward is batch-dependent: row {index} differs from that sample "
                         "alone", atol=ATOL, rtol=RTOL)


@given(data=st.data(), seed=gen.seeds())
def test_model_is_permutation_equivariant_in_eval_mode(target, data, seed):
    """forward(x[p]) == forward(x)[p] in eval mode.

    Catches: outputs misaligned with inputs (rolled, sorted or reshaped across the batch)."""
    images = data.draw(_batches(target, min_batch=2), label="images")
    order = np.array(data.draw(st.permutations(range(len(images))), label="permutation"))
    with reproduction(target, images=images, seed=seed, permutation=order.tolist()), \
            memory_guard(target, "the model", len(images)):
        model, inputs = target.build_model(seed), _inputs(target, images)
        assert_close(_forward_eval(model, inputs[order]), as_numpy(_forward_eval(model, inputs))[
            order], "forward is not permutation-equivariant", atol=ATOL, rtol=RTOL)


def _loss_and_gradients(model, inputs, labels):
    model.train()
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(inputs), labels)
    loss.backward()
    return loss


@examples_at_most(5)
@given(data=st.data(), seed=gen.seeds())
def test_every_parameter_receives_a_gradient(target, data, seed):
    """One backward pass gives every trainable parameter a finite, non-zero gradient.

    Catches: a layer defined but never used in forward, a detached branch, a
    zero-initialised layer that blocks the gradient to everything before it."""
    images, labels = _distinct_batch(target, data, max(2, min(4, model_batch(target))))
    with reproduction(target, images=images, labels=labels, seed=seed), \
            memory_guard(target, "a training step", len(images)):
        torch.manual_seed(seed)
        model = target.build_model(seed)
        _loss_and_gradients(model, _inputs(target, images), torch.from_numpy(labels))
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            if parameter.grad is None:
                fail(f"parameter {name!r} receives no gradient", "a gradient",
                     "None (unused in forward, or detached)")
            assert_finite(parameter.grad, f"gradient of {name!r}")
            if not parameter.grad.abs().sum() > 0:
                fail(f"parameter {name!r} receives an all-zero gradient", "a non-zero gradient",
                     "all zeros")


@examples_at_most(5)
@given(data=st.data(), seed=gen.seeds())
def test_one_optimizer_step_changes_every_trainable_parameter(target, data, seed):
    """After one Adam step every parameter with requires_grad has changed. Adam's first
    step moves each parameter with a non-zero gradient by about its learning rate whatever
    the gradient's size (``eps`` far below any real gradient), so a parameter behind a tiny
    scale (ConvNeXt's layer scale of 1e-6, whose plain SGD step is below float32's
    resolution) is seen to train.

    Catches: parameters missing from model.parameters() (plain tensor attributes, layers in
    a Python list instead of nn.ModuleList) and unused layers: they never train."""
    images, labels = _distinct_batch(target, data, max(2, min(4, model_batch(target))))
    with reproduction(target, images=images, labels=labels, seed=seed), \
            memory_guard(target, "a training step", len(images)):
        torch.manual_seed(seed)
        model = target.build_model(seed)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-30)
        _loss_and_gradients(model, _inputs(target, images), torch.from_numpy(labels))
        optimizer.step()
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and torch.equal(parameter.detach(), before[name]):
                fail(f"parameter {name!r} did not change after an optimizer step",
                     "a changed value", "unchanged")


@examples_at_most(3, cost=3)
@given(data=st.data(), seed=gen.seeds())
def test_loss_falls_when_overfitting_one_small_batch(target, data, seed):
    """Adam on one batch of distinct labelled images (8, fewer for a large model) at least
    halves the training loss within ``OVERFIT_STEPS`` steps (checked every
    ``OVERFIT_CHECK_EVERY``: a healthy model stops early).

    Catches: a network whose output cannot depend on its input (input replaced or
    detached), wrong loss wiring, a frozen feature extractor."""
    size = 8 if model_batch(target) >= MAX_BATCH else max(2, model_batch(target))
    images, labels = _distinct_batch(target, data, size)
    with reproduction(target, images=images, labels=labels, seed=seed), \
            memory_guard(target, "overfitting a batch", len(images)):
        torch.manual_seed(seed)
        model = target.build_model(seed)
        inputs, targets = _inputs(target, images), torch.from_numpy(labels)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.eval()  # trained in eval mode: no dropout noise, fixed batch-norm statistics
        with torch.no_grad():
            first = float(torch.nn.functional.cross_entropy(model(inputs), targets))
        for step in range(1, OVERFIT_STEPS + 1):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
            loss.backward()
            optimizer.step()
            if step % OVERFIT_CHECK_EVERY == 0 or step == OVERFIT_STEPS:
                with torch.no_grad():
                    last = float(torch.nn.functional.cross_entropy(model(inputs), targets))
                if last <= OVERFIT_RATIO * first:
                    break
        if not last <= OVERFIT_RATIO * first:
            fail("the loss does not fall when overfitting one batch",
                 f"loss after {OVERFIT_STEPS} steps <= {OVERFIT_RATIO} x {first:.4f}",
                 f"{last:.4f}")


@examples_at_most(5)
@given(data=st.data(), seeds=st.lists(gen.seeds(), min_size=2, max_size=2, unique=True))
def test_state_dict_round_trip_gives_identical_outputs(target, data, seeds):
    """Saving a model's state_dict and loading it into a model built with another seed gives
    bit-identical eval outputs (safe load: weights_only=True).

    Catches: state kept in plain tensor attributes (not parameters or buffers), which is
    lost when the model is packaged and served."""
    images = data.draw(_batches(target), label="images")
    with reproduction(target, images=images, seeds=seeds):
        original = target.build_model(seeds[0])
        buffer = io.BytesIO()
        torch.save(original.state_dict(), buffer)
        buffer.seek(0)
        restored = target.build_model(seeds[1])
        restored.load_state_dict(torch.load(buffer, weights_only=True))
        inputs = _inputs(target, images)
        assert_close(_forward_eval(restored, inputs), _forward_eval(original, inputs),
                     "outputs differ after a state_dict round trip")
