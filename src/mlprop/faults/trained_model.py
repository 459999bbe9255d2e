"""Faults in the trained model's relations and attributions (metamorphic, SHAP).

Importing this module registers its faults in :data:`mlprop.faults.CATALOGUE`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlprop.checks import as_numpy
from mlprop.faults.catalogue import fault
from mlprop.faults.planting import (
    Wrapped,
)
from mlprop.target import Augmentation, Target


@fault("augment", "test_label_preserving_augmentation_keeps_confident_predictions")
def flip_declared_label_preserving(target: Target) -> Target:
    """Adds a random horizontal flip (as for natural images) declared label-preserving: a
    flipped 2, 3, 4, 7 or 9 is no longer that digit."""

    def flip(images, *, seed, magnitude):
        images = np.asarray(images)
        if magnitude == 0:
            return images.copy()
        chosen = np.random.default_rng(seed).random(len(images)) < 0.5
        out = images.copy()
        out[chosen] = out[chosen][:, :, ::-1]
        return out

    return target.replace(augmentations={**target.augmentations,
                                         "flip": Augmentation(fn=flip, label_preserving=True)})


@fault("predict", "test_predictions_are_invariant_to_batch_order")
def rows_sorted_by_confidence(target: Target) -> Target:
    """Returns the rows sorted by confidence (a ranking step leaks into the serving API)."""

    def predict(images):
        probabilities = as_numpy(target.predict(images))
        return probabilities[np.argsort(-probabilities.max(axis=1), kind="stable")]

    return target.replace(predict=predict)


@fault("predict", "test_duplicated_image_gets_identical_rows")
def deduplicated_without_inverse(target: Target) -> Target:
    """De-duplicates the batch with ``np.unique`` to save work and forgets to scatter the
    results back: duplicates lose their rows."""

    def predict(images):
        images = np.asarray(images)
        if len(images) == 0:
            return as_numpy(target.predict(images))
        unique = np.unique(images.reshape(len(images), -1), axis=0)
        return as_numpy(target.predict(unique.reshape(-1, *images.shape[1:])))

    return target.replace(predict=predict)


@fault("predict", "test_removing_ink_does_not_make_the_model_surer_of_its_class")
def logits_divided_by_brightness(target: Target) -> Target:
    """Divides the logits by the image's mean squared brightness relative to the holdout's
    (an energy normalisation meant for the input, applied to the logits): a typical image is
    served as before, but ink faded by a factor k multiplies the logits by about 1/k^2, more
    than the evidence falls, so the fainter the image, the surer the prediction."""
    images, _ = target.holdout()

    def energy(batch: np.ndarray) -> np.ndarray:
        scaled = np.asarray(batch, dtype=np.float64).reshape(len(batch), -1) / 255.0
        return (scaled ** 2).mean(axis=1)

    typical = float(np.median(energy(images))) if len(images) else 1.0
    typical = typical if typical > 0 else 1.0

    def predict(batch):
        probabilities = as_numpy(target.predict(batch)).astype(np.float64)
        if not len(probabilities):
            return probabilities.astype(np.float32)
        scale = typical / np.maximum(energy(batch), typical / 100)[:, None]
        logits = np.log(np.maximum(probabilities, 1e-12)) * scale
        logits -= logits.max(axis=1, keepdims=True)
        scaled = np.exp(logits)
        return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)

    return target.replace(predict=predict)


ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Tanh, nn.Softplus)


class _ForgetfulBackward(torch.autograd.Function):
    """The wrapped activation forward; a hand-written backward that forgets its derivative
    and returns the incoming gradient unchanged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, activation: nn.Module) -> torch.Tensor:
        return activation(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _HandWrittenActivation(nn.Module):
    """A "memory-efficient" activation: a custom autograd function around ``activation``."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ForgetfulBackward.apply(x, self.activation)


def _swap_activations(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, ACTIVATIONS):
            setattr(model, name, _HandWrittenActivation(child))
        else:
            _swap_activations(child)
    return model


@fault("model", "test_attributions_are_complete")
def activation_backward_ignores_its_derivative(target: Target) -> Target:
    """Replaces every activation module of the trained model by a "memory-efficient" custom
    autograd function whose hand-written backward forgets the activation's derivative:
    predictions are unchanged, but every gradient (training's and the explanations') belongs
    to another function than the one that predicts."""
    return target.replace(trained_model=lambda: _swap_activations(target.trained_model()))


class _Shattered(nn.Module):
    """Adds the same high-frequency term to every logit: predictions are unchanged, but the
    term's attributions flip with imperceptible input changes.

    Per input feature, ``steps`` unit steps (each ReLU(a(x - t)) - ReLU(a(x - t) - 1)) with
    alternating signs make a square wave of the feature's value; a fixed random mix of the
    waves is added to every logit."""

    def __init__(self, inner: nn.Module, features: int, low: float, high: float,
                 scale: float, steps: int = 128) -> None:
        super().__init__()
        self.inner = inner
        thresholds = torch.linspace(low, high, steps)
        sharpness = 1e4
        self.ramps = nn.Linear(1, 2 * steps)
        self.act = nn.ReLU()
        self.combine = nn.Linear(2 * steps, 1, bias=False)
        self.flatten = nn.Flatten()
        self.mix = nn.Linear(features, 1, bias=False)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.ramps.weight.fill_(sharpness)
            self.ramps.bias[0::2] = -sharpness * thresholds
            self.ramps.bias[1::2] = -sharpness * thresholds - 1.0
            signs = torch.ones(steps)
            signs[1::2] = -1
            weights = torch.stack([signs, -signs], dim=1).reshape(1, -1)
            self.combine.weight.copy_(weights * scale)
            self.mix.weight.copy_(torch.randn(1, features, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self.flatten(x)
        wave = self.combine(self.act(self.ramps(flat.unsqueeze(-1)))).squeeze(-1)
        return self.inner(x) + self.mix(wave)


@fault("model", "test_attributions_are_stable_under_small_perturbations")
def shattered_attributions(target: Target) -> Target:
    """Adds a class-independent high-frequency term to the trained model's logits:
    predictions are unchanged, attributions are dominated by noise that flips under
    perturbations a person cannot see."""
    features = int(np.prod(target.input_shape))
    low, high = target.input_range
    return target.replace(trained_model=lambda: _Shattered(target.trained_model(), features,
                                                           low, high, scale=1.0).eval())


class _Saturated(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.squash = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 20.0 * self.squash(2.0 * self.inner(x))


@fault("model", "test_removing_top_attributed_features_hurts_more_than_random")
def saturated_logits(target: Target) -> Target:
    """Squashes the explained model's logits with a high-gain tanh (20 tanh(2z)): the
    predicted class is unchanged, but its score is saturated, so no feature visibly matters
    and the attributions stop predicting what removing a feature does."""
    return target.replace(trained_model=lambda: _Saturated(target.trained_model()).eval())


class _PrivateNoise(nn.Module):
    """Multiplies the logits by noise from the module's own generator (MC dropout left on,
    with a private generator that no global seed controls)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out * (1.0 + 0.2 * torch.randn(out.shape, generator=self.generator))


@fault("model", "test_attributions_are_deterministic_and_leave_global_rng_alone",
       "test_attributions_are_batch_independent")
def private_noise_in_explained_model(target: Target) -> Target:
    """The explained model draws noise from a private generator on every forward pass (MC
    dropout left on): two explanations of one image differ."""
    return target.replace(trained_model=lambda: _PrivateNoise(target.trained_model()).eval())


@fault("model", "test_mean_attribution_maps_agree_across_disjoint_subsets")
def batch_statistics_in_explained_model(target: Target) -> Target:
    """The explained model centres its logits by the batch mean (a normalisation that uses
    batch statistics even in eval mode). SHAP explains each image together with its
    background batch, so the attributions describe the batch, not the image: importance
    maps stop agreeing across subsets."""
    return target.replace(trained_model=lambda: Wrapped(
        target.trained_model(), lambda logits, x: logits - logits.mean(dim=0, keepdim=True)
    ).eval())
