"""The catalogue of realistic ML faults.

Each :class:`Fault` takes a *correct* target and returns a faulty one (``Target.replace``
with one faulty component) and names the properties expected to catch it. The faults are
written against the target contract only, so they apply to any target; the catalogue check
(``tests/test_fault_catalogue.py``) runs each fault against the properties it names, and
``mlprop faults`` sweeps every fault against the whole suite to build the kill matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import nn

from mlprop.checks import as_numpy, as_tensor
from mlprop.target import Augmentation, Target


@dataclass(frozen=True)
class Fault:
    """A named bug: ``inject(target)`` returns the target with the bug planted."""

    name: str
    component: str
    description: str
    catches: tuple[str, ...]
    inject: Callable[[Target], Target]
    applies: Callable[[Target], bool] = lambda target: True
    """Whether the bug can exist in ``target`` at all (a BGR/RGB swap needs colour): the
    catalogue check and the sweep leave a fault out where it does not apply."""
    catches_on: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}))
    """Per target name, the properties that catch the fault there when they differ from
    ``catches`` (the same bug shows through another invariant in a colour pipeline)."""

    def catches_for(self, target: Target | str) -> tuple[str, ...]:
        """The properties expected to catch this fault in ``target`` (or a target name)."""
        name = target if isinstance(target, str) else target.name
        return self.catches_on.get(name, self.catches)

    @property
    def every_catch(self) -> tuple[str, ...]:
        """Every property named for this fault on any target, ``catches`` first."""
        found = list(self.catches)
        for names in self.catches_on.values():
            found += [name for name in names if name not in found]
        return tuple(found)


CATALOGUE: dict[str, Fault] = {}


def fault(component: str, *catches: str, applies: Callable[[Target], bool] | None = None,
          catches_on: Mapping[str, Sequence[str]] | None = None,
          ) -> Callable[[Callable[[Target], Target]], Fault]:
    """Register ``fn`` as a fault; its docstring is the description. ``applies`` says which
    targets it can be planted in (default: every target); ``catches_on`` maps a target name
    to the properties that catch it there instead of ``catches``."""

    def register(inject: Callable[[Target], Target]) -> Fault:
        entry = Fault(inject.__name__, component, (inject.__doc__ or "").strip(), catches,
                      inject, applies if applies is not None else Fault.applies,
                      MappingProxyType({name: tuple(props) for name, props in
                                        (catches_on or {}).items()}))
        if entry.name in CATALOGUE:
            raise ValueError(f"duplicate fault name {entry.name!r}")
        CATALOGUE[entry.name] = entry
        return entry

    return register


def _map_augmentations(target: Target, wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
                       ) -> Target:
    return target.replace(augmentations={
        name: Augmentation(fn=wrap(aug.fn), label_preserving=aug.label_preserving,
                           per_image=aug.per_image)
        for name, aug in target.augmentations.items()})


def _serve(target: Target, model: nn.Module, images: np.ndarray, *, train_mode: bool = False,
           softmax_dim: int = 1) -> np.ndarray:
    """A generic serving path: preprocess -> model -> softmax (the faults vary one step)."""
    inputs = as_tensor(target.preprocess(images))
    model.train(train_mode)
    with torch.no_grad():
        return torch.softmax(model(inputs), dim=softmax_dim).numpy()


class _Wrapped(nn.Module):
    """A model whose forward output is post-processed by ``after(logits, inputs)``."""

    def __init__(self, inner: nn.Module, after: Callable[[torch.Tensor, torch.Tensor],
                                                         torch.Tensor]) -> None:
        super().__init__()
        self.inner = inner
        self.after = after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.inner(x), x)


def _wrap_model(target: Target, after: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                ) -> Target:
    return target.replace(build_model=lambda seed: _Wrapped(target.build_model(seed), after))


# --- preprocessing ---------------------------------------------------------------------


@fault("preprocess", "test_preprocess_is_batch_independent")
def per_batch_normalization(target: Target) -> Target:
    """Normalises with the batch's mean and std instead of fixed constants."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        if out.size == 0:
            return out
        return ((out - out.mean()) / (out.std() + 1e-6) * out.std() + out.mean() * 0.9
                ).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_output_is_finite_and_inside_declared_range")
def forgotten_scaling(target: Target) -> Target:
    """Forgets the /255: preprocessed values are 255 times too large."""
    return target.replace(preprocess=lambda images: as_numpy(target.preprocess(images)) * 255)


@fault("preprocess", "test_preprocess_output_has_declared_shape_and_dtype")
def float64_output(target: Target) -> Target:
    """Returns float64 (a NumPy normalisation with Python float constants)."""
    return target.replace(
        preprocess=lambda images: as_numpy(target.preprocess(images)).astype(np.float64))


@fault("preprocess", "test_preprocess_never_writes_into_its_input")
def preprocess_writes_into_input(target: Target) -> Target:
    """Clips the caller's array in place before preprocessing (``np.clip(out=images)``)."""

    def preprocess(images):
        if isinstance(images, np.ndarray) and images.dtype == np.uint8:
            np.clip(images, 1, 254, out=images)
        return target.preprocess(images)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_accepts_empty_and_single_batches",
       "test_preprocess_output_has_declared_shape_and_dtype")
def squeeze_single_image(target: Target) -> Target:
    """Calls ``np.squeeze`` on the output, dropping the batch axis of a batch of one."""
    return target.replace(preprocess=lambda images: np.squeeze(as_numpy(target.preprocess(images))))


@fault("preprocess", "test_preprocess_accepts_empty_and_single_batches")
def empty_batch_crash(target: Target) -> Target:
    """Preprocesses image by image and ``np.stack``s the rows: fails on an empty batch."""

    def preprocess(images):
        rows = [as_numpy(target.preprocess(images[i:i + 1]))[0] for i in range(len(images))]
        return np.stack(rows)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_rejects_invalid_images_with_a_clear_error")
def no_input_validation(target: Target) -> Target:
    """Silently casts whatever arrives to uint8 (float input wraps to garbage)."""

    def preprocess(images):
        array = np.asarray(images)
        if array.ndim == 2:
            array = array[np.newaxis]
        with np.errstate(invalid="ignore"):
            array = np.nan_to_num(array).astype(np.uint8)
        side_low, side_high = target.schema.min_side, target.schema.max_side
        if array.ndim == 3 and not (side_low <= min(array.shape[1:]) and
                                    max(array.shape[1:]) <= side_high):
            array = np.zeros((len(array), side_low, side_low), np.uint8)
        if array.ndim != 3:
            array = np.zeros((1, side_low, side_low), np.uint8)
        return target.preprocess(array)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_is_permutation_equivariant",
       "test_preprocess_is_batch_independent")
def shuffled_at_inference(target: Target) -> Target:
    """Shuffles the batch on the way through (a DataLoader with shuffle=True at inference)."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        return out[np.random.default_rng(len(out)).permutation(len(out))]

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_output_is_finite_and_inside_declared_range")
def nan_on_constant_image(target: Target) -> Target:
    """Standardises each image by its own std: divides by zero on constant images."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        spread = np.asarray(images, np.float64).std(axis=(1, 2)).reshape(-1, 1, 1, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (out * (spread / spread)).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_accepts_every_valid_memory_layout")
def from_numpy_without_copy(target: Target) -> Target:
    """Wraps the input with ``torch.from_numpy`` (no copy): fails on negative strides."""

    def preprocess(images):
        if isinstance(images, np.ndarray):
            with warnings.catch_warnings():  # torch warns about read-only arrays
                warnings.simplefilter("ignore", UserWarning)
                images = torch.from_numpy(images).numpy()
        return target.preprocess(images)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_is_deterministic")
def jitter_at_inference(target: Target) -> Target:
    """Adds random jitter in preprocessing (training-time augmentation left on)."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        low, high = target.input_range
        noise = np.random.default_rng().uniform(-1e-3, 1e-3, size=out.shape)
        return np.clip(out + noise, low, high).astype(np.float32)

    return target.replace(preprocess=preprocess)


# issue 24: orientation and the declared per-channel normalisation


def _valid_batch(target: Target, images: Any) -> bool:
    """Whether ``images`` passes the schema (the orientation bugs sit after validation)."""
    return isinstance(images, np.ndarray) and not target.schema.image_violations(images)


def _sides_swapped(target: Target, images: Any) -> Any:
    """``images`` with height and width swapped (each image transposed), in its layout."""
    if not _valid_batch(target, images):
        return images
    return np.ascontiguousarray(np.swapaxes(images, *target.schema.side_axes))


def _transposable(target: Target) -> bool:
    size = target.schema.size
    return size is None or size[0] == size[1]


@fault("preprocess", "test_preprocess_keeps_the_image_orientation", applies=_transposable)
def transposed_in_preprocess(target: Target) -> Target:
    """Swaps height and width on the way to channels-first (``permute(0, 3, 2, 1)`` instead of
    ``permute(0, 3, 1, 2)`` on a channels-last batch): every image reaches the model
    transposed, and shapes still match for square inputs."""
    return target.replace(
        preprocess=lambda images: target.preprocess(_sides_swapped(target, images)))


@fault("preprocess", "test_preprocess_keeps_the_image_orientation")
def upside_down_in_preprocess(target: Target) -> Target:
    """Reads the rows bottom-up (a decoder with a bottom-left origin, as in BMP files or an
    OpenGL texture read-back): every image reaches the model upside down."""

    def preprocess(images):
        if _valid_batch(target, images):
            images = np.ascontiguousarray(np.flip(images, axis=target.schema.side_axes[0]))
        return target.preprocess(images)

    return target.replace(preprocess=preprocess)


def _declares_normalization(target: Target) -> bool:
    norm = target.channel_normalization
    return norm is not None and len(norm[0]) == target.input_shape[0]


def _normalization_arrays(target: Target) -> tuple[np.ndarray, np.ndarray]:
    mean, std = (np.asarray(part, np.float32).reshape(1, -1, 1, 1)
                 for part in target.channel_normalization)
    return mean, std


@fault("preprocess", "test_preprocess_normalises_constant_images_with_the_declared_constants",
       applies=_declares_normalization)
def scaled_by_image_maximum(target: Target) -> Target:
    """Scales each image by its own maximum (``x / x.max()``, clamped for black images)
    instead of by 255: a dim image comes out as bright as a saturated one, and every value
    stays inside the declared range."""
    mean, std = _normalization_arrays(target)

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        if out.ndim != 4 or out.shape[1] != mean.shape[1] or len(out) == 0:
            return out
        pixels = out * std + mean
        peak = np.maximum(pixels.max(axis=(1, 2, 3), keepdims=True), np.float32(1 / 255))
        return ((pixels / peak - mean) / std).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_normalises_constant_images_with_the_declared_constants",
       applies=_declares_normalization, catches_on={"colour": (
           "test_preprocess_normalises_constant_images_with_the_declared_constants",
           "test_preprocess_keeps_each_channel_with_its_normalisation")})
def normalized_twice(target: Target) -> Target:
    """Applies ``Normalize(mean, std)`` twice (in the dataset transform and again in a model
    wrapper), with ``input_range`` honestly widened to what comes out, so the range check
    passes."""
    mean, std = _normalization_arrays(target)
    low, high = target.input_range
    lowest = float(((low - mean) / std).min())
    highest = float(((high - mean) / std).max())

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        if out.ndim != 4 or out.shape[1] != mean.shape[1]:
            return out
        return ((out - mean) / std).astype(np.float32)

    return target.replace(preprocess=preprocess, input_range=(
        lowest - 1e-3 * (1 + abs(lowest)), highest + 1e-3 * (1 + abs(highest))))


# --- augmentation ----------------------------------------------------------------------


@fault("augment", "test_augmentation_is_deterministic_for_a_seed")
def augmentation_ignores_seed(target: Target) -> Target:
    """Draws its randomness from the global NumPy RNG instead of ``seed``."""
    return _map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: fn(
        images, seed=int(np.random.randint(0, 2**31)), magnitude=magnitude))


@fault("augment", "test_augmentation_does_not_wrap_around_on_extreme_images",
       "test_augmentation_change_vanishes_at_small_magnitude")
def noise_wraps_uint8(target: Target) -> Target:
    """Adds integer noise in uint8 arithmetic: 255 + 3 wraps to 2 (replaces every augmentation)."""

    def noisy(images, *, seed, magnitude):
        rng = np.random.default_rng(seed)
        amplitude = int(np.ceil(magnitude * 64))
        noise = rng.integers(-amplitude, amplitude + 1, size=np.shape(images))
        return np.asarray(images, np.uint8) + noise.astype(np.uint8)

    return _map_augmentations(target, lambda fn: noisy)


@fault("augment", "test_augmentation_is_identity_at_zero_magnitude",
       "test_augmentation_change_vanishes_at_small_magnitude")
def shift_at_zero_magnitude(target: Target) -> Target:
    """Always shifts by one pixel on top of the augmentation, even at magnitude 0."""
    return _map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: np.roll(
        as_numpy(fn(images, seed=seed, magnitude=magnitude)), 1, axis=-1))


@fault("augment", "test_augmentation_never_writes_into_its_input")
def augmentation_writes_into_input(target: Target) -> Target:
    """Writes the augmented pixels back into the caller's array (``images[...] = out``)."""

    def wrap(fn):
        def augmented(images, *, seed, magnitude):
            out = as_numpy(fn(images, seed=seed, magnitude=magnitude))
            images[...] = out
            return out

        return augmented

    return _map_augmentations(target, wrap)


@fault("augment", "test_augmentation_keeps_shape_and_dtype")
def augmentation_returns_float(target: Target) -> Target:
    """Returns float32 pixels from a float-space transform, never cast back to uint8."""
    return _map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: as_numpy(
        fn(images, seed=seed, magnitude=magnitude)).astype(np.float32))


@fault("augment", "test_augmentation_change_does_not_fall_as_magnitude_grows",
       "test_augmentation_is_identity_at_zero_magnitude")
def inverted_magnitude(target: Target) -> Target:
    """Uses ``1 - magnitude`` as the strength: stronger settings augment less."""
    return _map_augmentations(target, lambda fn: lambda images, *, seed, magnitude: fn(
        images, seed=seed, magnitude=1.0 - magnitude))


def _is_rgb(target: Target) -> bool:
    return target.schema.channels == 3


@fault("augment", "test_augmentation_does_not_wrap_around_on_extreme_images", applies=_is_rgb)
def greyscale_sum_wraps_uint8(target: Target) -> Target:
    """Adds a random greyscale (each image with probability ``magnitude / 2``) that averages
    the channels in uint8 arithmetic, ``(R + G + B) // 3``: the sum wraps, so white becomes
    84 instead of 255, on the few images the draw picks."""
    schema = target.schema

    def greyscale(images, *, seed, magnitude):
        last = schema.to_channels_last(np.asarray(images))
        chosen = np.random.default_rng(seed).random(len(last)) < magnitude / 2
        out = last.copy()
        picked = last[chosen]
        out[chosen] = ((picked[..., 0] + picked[..., 1] + picked[..., 2]) // 3)[..., None]
        return schema.from_channels_last(out)

    return target.replace(augmentations={
        **target.augmentations, "greyscale": Augmentation(fn=greyscale, label_preserving=False)})


@fault("augment", "test_augmentation_does_not_wrap_around_on_extreme_images")
def brightness_wraps_uint8(target: Target) -> Target:
    """Adds a random brightening, applied to a random half of the images, that adds up to
    ``magnitude * 64`` grey levels in uint8 arithmetic: bright pixels wrap (250 + 8 -> 2)
    while dark ones are fine."""

    def brighten(images, *, seed, magnitude):
        images = np.asarray(images)
        rng = np.random.default_rng(seed)
        applied = rng.random(len(images)) < 0.5
        deltas = (magnitude * 64 * rng.random(len(images))).astype(np.uint8) * applied
        return images + deltas.astype(np.uint8).reshape((-1,) + (1,) * (images.ndim - 1))

    return target.replace(augmentations={
        **target.augmentations, "brighten": Augmentation(fn=brighten, label_preserving=True)})


# --- model -----------------------------------------------------------------------------


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
    return _wrap_model(target, lambda logits, x: nn.functional.dropout(logits, 0.5,
                                                                       training=True))


@fault("model", "test_model_is_batch_independent_in_eval_mode")
def cross_sample_leakage(target: Target) -> Target:
    """Adds the batch mean of the logits to every row (a mean over dim 0)."""
    return _wrap_model(target, lambda logits, x: logits + logits.mean(dim=0, keepdim=True))


@fault("model", "test_model_is_permutation_equivariant_in_eval_mode",
       "test_model_is_batch_independent_in_eval_mode")
def rolled_outputs(target: Target) -> Target:
    """Returns the logits rolled by one sample (an off-by-one in batch indexing)."""
    return _wrap_model(target, lambda logits, x: torch.roll(logits, 1, dims=0))


@fault("model", "test_model_output_is_one_logit_row_per_image")
def wrong_head_width(target: Target) -> Target:
    """The classifier head has one output too many (num_classes + 1 logits)."""
    return _wrap_model(target, lambda logits, x: torch.cat([logits, logits[:, :1]], dim=1))


@fault("model", "test_model_output_is_finite_on_every_valid_input")
def per_sample_standardization_in_forward(target: Target) -> Target:
    """Standardises each input channel by its own std inside forward (instance
    normalisation without an epsilon): NaN on constant images."""

    def after(logits, x):
        spread = x.flatten(2).std(dim=2)
        return logits * (spread / spread).mean(dim=1, keepdim=True)

    return _wrap_model(target, after)


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


# --- serving ---------------------------------------------------------------------------


@fault("predict", "test_predict_is_deterministic",
       catches_on={"colour": ("test_predict_is_batch_independent",)})
def eval_forgotten_in_predict(target: Target) -> Target:
    """Serves with the model in train mode (model.eval() forgotten): dropout at inference,
    batch norm normalising with the statistics of the served batch (the colour reference has
    no dropout: there it shows as batch dependence)."""
    model = target.trained_model()
    return target.replace(predict=lambda images: _serve(target, model, images, train_mode=True))


@fault("predict", "test_predict_is_batch_independent")
def batchnorm_train_mode_at_serve(target: Target) -> Target:
    """Normalises logits with a BatchNorm layer left in train mode: batch statistics."""
    model = target.trained_model()
    norm = nn.BatchNorm1d(target.schema.num_classes, affine=False)

    def predict(images):
        inputs = as_tensor(target.preprocess(images))
        model.eval()
        norm.train()
        with torch.no_grad():
            logits = model(inputs)
            if len(logits) > 1:
                logits = norm(logits)
            return torch.softmax(logits, dim=1).numpy()

    return target.replace(predict=predict)


@fault("predict", "test_predict_rows_are_probability_distributions")
def softmax_over_batch(target: Target) -> Target:
    """Applies softmax over dim=0 (the batch) instead of the classes."""
    model = target.trained_model()
    return target.replace(predict=lambda images: _serve(target, model, images, softmax_dim=0))


@fault("predict", "test_predict_returns_one_row_per_image")
def squeeze_in_predict(target: Target) -> Target:
    """Calls ``.squeeze()`` on the probabilities: a batch of one loses its batch axis."""
    return target.replace(predict=lambda images: np.squeeze(as_numpy(target.predict(images))))


@fault("predict", "test_predict_accuracy_on_holdout_meets_the_floor")
def inverted_colors_at_serve(target: Target) -> Target:
    """Train/serve skew: the serving path inverts colours (255 - x) before predicting."""
    return target.replace(predict=lambda images: target.predict(
        255 - np.asarray(images, np.uint8) if np.asarray(images).dtype == np.uint8 else images))


@fault("predict", "test_predict_accuracy_on_holdout_meets_the_floor")
def untrained_model_served(target: Target) -> Target:
    """Packages and serves a freshly initialised model instead of the trained one."""
    model = target.build_model(0)
    return target.replace(predict=lambda images: _serve(target, model, images))


@fault("predict", "test_predict_accuracy_on_holdout_meets_the_floor")
def transposed_at_serve(target: Target) -> Target:
    """Train/serve skew: the serving path transposes each image (H and W swapped)."""
    return target.replace(predict=lambda images: target.predict(_sides_swapped(target, images)))


# --- trained-model relations and attributions (issue: metamorphic + SHAP) ---------------


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
    return target.replace(trained_model=lambda: _Wrapped(
        target.trained_model(), lambda logits, x: logits - logits.mean(dim=0, keepdim=True)
    ).eval())


# --- colour (issue 15): channels, layouts, grey input, per-image randomness -------------


def _is_colour(target: Target) -> bool:
    return target.schema.channels > 1


def _model_input_has_channels(target: Target) -> bool:
    return target.input_shape[0] > 1


def _channels_reversed(target: Target, images: Any) -> Any:
    """``images`` with the channel order reversed (RGB <-> BGR), in the schema's layout."""
    schema = target.schema
    if not isinstance(images, np.ndarray) or images.ndim != schema.ndim:
        return images
    last = schema.to_channels_last(images)
    if last.shape[-1] != schema.channels:
        return images
    return schema.from_channels_last(np.ascontiguousarray(last[..., ::-1]))


@fault("preprocess", "test_preprocess_keeps_each_channel_with_its_normalisation",
       "test_predict_accuracy_on_holdout_meets_the_floor", applies=_is_colour)
def bgr_channel_order(target: Target) -> Target:
    """Reads the channels in BGR order (an OpenCV ``cv2.imread`` habit) inside preprocessing
    while the model was trained on RGB: red and blue swap places."""
    serve = target.predict
    return target.replace(
        preprocess=lambda images: target.preprocess(_channels_reversed(target, images)),
        predict=None if serve is None else lambda images: serve(
            _channels_reversed(target, images)))


def _has_asymmetric_normalization(target: Target) -> bool:
    norm = target.channel_normalization
    return _is_colour(target) and norm is not None and (
        tuple(norm[0]) != tuple(norm[0])[::-1] or tuple(norm[1]) != tuple(norm[1])[::-1])


@fault("preprocess", "test_preprocess_keeps_each_channel_with_its_normalisation",
       applies=_has_asymmetric_normalization)
def normalization_constants_reversed(target: Target) -> Target:
    """Normalises with the per-channel mean and std in the reverse channel order (constants
    copied for BGR, images read as RGB)."""
    mean, std = (np.asarray(part, np.float32).reshape(1, -1, 1, 1)
                 for part in target.channel_normalization)

    def preprocess(images):
        out = as_numpy(target.preprocess(images)).astype(np.float32)
        if out.ndim != 4 or out.shape[1] != mean.shape[1]:
            return out
        pixels = out * std + mean
        return ((pixels - mean[:, ::-1]) / std[:, ::-1]).astype(np.float32)

    return target.replace(preprocess=preprocess)


@fault("preprocess", "test_preprocess_puts_channel_constants_on_the_channel_axis",
       applies=_model_input_has_channels)
def channels_last_viewed_as_channels_first(target: Target) -> Target:
    """Turns channels-last pixels into the model's channels-first input with ``view`` /
    ``reshape`` instead of ``permute``: the colours are smeared across height and width."""

    def preprocess(images):
        out = as_numpy(target.preprocess(images))
        if out.ndim != 4:
            return out
        channels_last = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        return channels_last.reshape(out.shape)

    return target.replace(preprocess=preprocess)


def _has_colour_defects(target: Target) -> bool:
    from mlprop.strategies.invalid import applicable_fields

    return bool({"images.channels", "images.layout", "images.alpha"}
                & set(applicable_fields(target.schema)))


@fault("preprocess", "test_preprocess_rejects_wrong_channels_layout_and_alpha",
       applies=_has_colour_defects)
def guesses_channel_layout(target: Target) -> Target:
    """Guesses instead of refusing: moves a channel axis that looks misplaced to where the
    schema wants it, drops a fourth (alpha) channel and repeats or cuts channels to fit."""
    schema = target.schema

    def preprocess(images):
        array = np.asarray(images)
        if array.ndim == 4 and schema.layout != "HW":
            axis = schema.channel_axis
            other = 1 if axis == 3 else 3
            if array.shape[axis] != schema.channels and array.shape[other] == schema.channels:
                array = np.moveaxis(array, other, axis)
            if array.shape[axis] != schema.channels:
                last = schema.to_channels_last(array)
                last = np.resize(last[..., :1], (*last.shape[:-1], schema.channels)) if (
                    last.shape[-1] < schema.channels) else last[..., :schema.channels]
                array = schema.from_channels_last(np.ascontiguousarray(last))
        return target.preprocess(np.ascontiguousarray(array))

    return target.replace(preprocess=preprocess)


def _has_augmentations(target: Target) -> bool:
    return bool(target.augmentations)


@fault("augment", "test_augmentation_draws_random_parameters_per_image",
       applies=_has_augmentations)
def augmentation_parameters_drawn_per_batch(target: Target) -> Target:
    """Draws one set of random parameters for the whole batch (a batch-level transform
    applied to the batch tensor): every image gets the same angle, offset or noise."""

    def wrap(fn):
        def augmented(images, *, seed, magnitude):
            if not isinstance(images, np.ndarray) or len(images) == 0:
                return fn(images, seed=seed, magnitude=magnitude)
            rows = [as_numpy(fn(images[i:i + 1], seed=seed, magnitude=magnitude))
                    for i in range(len(images))]
            return np.concatenate(rows)

        return augmented

    return _map_augmentations(target, wrap)


def _accepts_grey_in_colour(target: Target) -> bool:
    return target.accepts_grey and _is_colour(target) and target.predict is not None


@fault("predict", "test_predict_gives_a_grey_image_the_same_answer_in_grey_and_in_colour",
       applies=_accepts_grey_in_colour)
def grey_into_red_channel_only(target: Target) -> Target:
    """Serves grayscale uploads by putting the grey values into the first (red) channel and
    zeros into the others, instead of R = G = B."""
    schema = target.schema

    def predict(images):
        if isinstance(images, np.ndarray) and images.ndim == 3 and schema.ndim == 4:
            last = np.zeros((*images.shape, schema.channels), np.uint8)
            last[..., 0] = images
            images = schema.from_channels_last(last)
        return target.predict(images)

    return target.replace(predict=predict)


# --- training: the user's own loop (Target.train), wrapped from outside --------------------


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
    return _checkpoints(target) and any(
        isinstance(module, nn.modules.batchnorm._BatchNorm)
        for module in _model_to_checkpoint(target).modules())


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
