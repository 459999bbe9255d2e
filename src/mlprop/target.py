"""The target contract: the pipeline the property suite checks.

A :class:`Target` bundles an image-classification pipeline's components. Construction
validates every field, so a bad target fails at once with one message naming the field,
instead of deep inside a property. See DESIGN.md, "The target contract".
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mlprop.errors import TargetError
from mlprop.schema import ImageSchema

__all__ = ["OPTIONAL_FIELDS", "REQUIRES_MARK", "Augmentation", "ImageSchema", "Target",
           "fields_left_out", "load_target"]

OPTIONAL_FIELDS = ("augmentations", "build_model", "trained_model", "predict", "holdout",
                   "channel_normalization", "accepts_grey", "train", "training_data",
                   "save_model", "load_model")
"""Target fields a pipeline may leave out (or declarations it may not make); the properties
that need one are skipped and listed as not checked."""

REQUIRES_MARK = "mlprop_requires"
"""The pytest mark a property declares the optional Target fields it needs with."""


def fields_left_out(needed: Iterable[str], target: Target) -> list[str]:
    """Of the Target fields ``needed``, the optional ones ``target`` leaves out (in order,
    once each): what makes a property skipped and listed as not checked (by the pytest plugin
    and by the fault sweep alike)."""
    return [name for name in dict.fromkeys(needed) if name in OPTIONAL_FIELDS
            and not getattr(target, name)]


def _check_callable(name: str, fn: Any, args: tuple, kwargs: dict, doc: str) -> None:
    """Raise TargetError unless ``fn`` is callable and accepts ``args``/``kwargs``."""
    if not callable(fn):
        raise TargetError(name, f"a callable {doc}", repr(fn))
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: accept on trust
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TargetError(name, f"a callable {doc}",
                          f"{fn!r} with signature {signature}: {exc}") from None


@dataclass(frozen=True)
class Augmentation:
    """An image augmentation: ``fn(images, *, seed, magnitude) -> images``.

    ``label_preserving=True`` promises that a trained model's prediction survives the
    augmentation at small magnitude. ``per_image=True`` (the default) promises that its
    random parameters are drawn for each image, so identical images in one batch come out
    differently; ``False`` declares one draw per batch (like a ``transforms.v2`` transform
    given a whole batch tensor).
    """

    #: The augmentation, ``fn(images, *, seed, magnitude) -> images``: raw uint8 images in,
    #: same shape and dtype out; deterministic for a seed, the identity at magnitude 0.
    fn: Callable[..., Any]
    #: True: a trained model's prediction survives the augmentation at small magnitude (the
    #: metamorphic properties check it); False for an augmentation that may change the class.
    label_preserving: bool = True
    #: True: random parameters are drawn for each image (identical images in one batch come
    #: out differently); False: one draw per batch.
    per_image: bool = True

    def __post_init__(self) -> None:
        _check_callable("fn", self.fn, (None,), {"seed": 0, "magnitude": 0.0},
                        "fn(images, *, seed, magnitude)")
        if not isinstance(self.label_preserving, bool):
            raise TargetError("label_preserving", "a bool", repr(self.label_preserving))
        if not isinstance(self.per_image, bool):
            raise TargetError("per_image", "a bool", repr(self.per_image))


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Target:
    """An image-classification pipeline under test (frozen: use ``dataclasses.replace``).

    ``expected_failed_checks`` maps a property name to the reason the pipeline legitimately
    breaks it (like scikit-learn's ``expected_failed_checks``); ``thresholds`` overrides
    the statistical properties' defaults by name.

    Colour declarations: ``channel_normalization=(mean, std)`` gives the per-channel
    constants ``preprocess`` normalises with (one per raw channel, in the schema's channel
    order, on the [0, 1] pixel scale: ``(x / 255 - mean) / std``); ``accepts_grey=True``
    promises that ``predict`` also takes grayscale ``(N, H, W)`` batches, read as R = G = B.

    The training stage, all optional: ``train(images, labels, *, seed, epochs)`` is the
    user's own training function on raw images in the schema's format (uint8) and int labels,
    returning the trained module (it takes ``preprocess`` output); ``training_data()`` gives
    the ``(images, labels)`` that ``trained_model()`` was trained on, or an iterable of such
    batches; ``save_model(model, path)`` and ``load_model(path)`` are the user's checkpoint
    functions (both or neither).

    Only ``name``, ``schema``, ``input_shape``, ``input_range`` and ``preprocess`` are
    required: a pipeline without augmentations, a model, a serving path or a holdout set yet
    leaves those fields out (:data:`OPTIONAL_FIELDS`), and the properties that need them are
    skipped and listed as not checked.
    """

    #: The pipeline's name, shown in the pytest header, reports and reproductions.
    name: str
    #: The raw images (and labels) the pipeline accepts: an :class:`ImageSchema`.
    schema: ImageSchema
    #: ``(C, H, W)`` of one image as ``preprocess`` returns it.
    input_shape: tuple[int, ...]
    #: ``(low, high)``: declared bounds of every preprocessed value.
    input_range: tuple[float, float]
    #: ``preprocess(images)``: raw uint8 images in the schema's layout -> float32
    #: ``(N, *input_shape)`` (ndarray or tensor); deterministic, batch-independent, never
    #: writes into its input, accepts N = 0 and N = 1.
    preprocess: Callable[[Any], Any]
    #: Name -> :class:`Augmentation`: the training-time augmentations.
    augmentations: Mapping[str, Augmentation] = field(default_factory=dict)
    #: ``build_model(seed) -> torch.nn.Module`` giving logits ``(N, num_classes)``: the same
    #: seed gives identical parameters.
    build_model: Callable[[int], Any] | None = None
    #: ``trained_model() -> torch.nn.Module``: the trained network (logits), cached.
    trained_model: Callable[[], Any] | None = None
    #: ``predict(images) -> (N, num_classes)`` probabilities: the deployed serving path.
    predict: Callable[[Any], Any] | None = None
    #: ``holdout() -> (images, labels)``: uint8 images and int64 labels never trained on.
    holdout: Callable[[], tuple[Any, Any]] | None = None
    #: Floor for ``predict``'s accuracy on ``holdout()``.
    min_accuracy: float = 0.9
    #: Property name -> the reason the pipeline legitimately breaks it (like scikit-learn's
    #: ``expected_failed_checks``); a name that matches no property is reported.
    expected_failed_checks: Mapping[str, str] = field(default_factory=dict)
    #: Threshold name -> value: overrides a statistical property's default threshold (the
    #: properties reference lists each property's thresholds and defaults).
    thresholds: Mapping[str, float] = field(default_factory=dict)
    #: ``(mean, std)``: the per-channel constants ``preprocess`` normalises with, one per raw
    #: channel in the schema's order, on the [0, 1] pixel scale (``(x / 255 - mean) / std``).
    channel_normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    #: True promises that ``predict`` also takes grayscale ``(N, H, W)`` batches, read as
    #: R = G = B.
    accepts_grey: bool = False
    #: ``train(images, labels, *, seed, epochs) -> torch.nn.Module``: the user's own training
    #: function on raw uint8 images and int labels.
    train: Callable[..., Any] | None = None
    #: ``training_data() -> (images, labels)`` that ``trained_model()`` was trained on, or an
    #: iterable of such batches.
    training_data: Callable[[], Any] | None = None
    #: ``save_model(model, path)``: the user's checkpoint writer (with ``load_model``).
    save_model: Callable[[Any, Any], None] | None = None
    #: ``load_model(path) -> torch.nn.Module``: the user's checkpoint reader (with
    #: ``save_model``).
    load_model: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TargetError("name", "a non-empty str", repr(self.name))
        if not isinstance(self.schema, ImageSchema):
            raise TargetError("schema", "an mlprop.ImageSchema", type(self.schema).__name__)
        self._check_input_shape()
        self._check_input_range()
        _check_callable("preprocess", self.preprocess, (None,), {}, "preprocess(images)")
        self._check_augmentations()
        for name, args, doc in (("build_model", (0,), "build_model(seed)"),
                                ("trained_model", (), "trained_model()"),
                                ("predict", (None,), "predict(images)"),
                                ("holdout", (), "holdout()")):
            if getattr(self, name) is not None:
                _check_callable(name, getattr(self, name), args, {}, f"{doc} (or None)")
        accuracy = self.min_accuracy
        if isinstance(accuracy, bool) or not isinstance(accuracy, int | float) or not (
            0.0 <= accuracy <= 1.0
        ):
            raise TargetError("min_accuracy", "a number in [0, 1]", repr(accuracy))
        self._check_str_mapping("expected_failed_checks", str)
        self._check_str_mapping("thresholds", (int, float))
        self._check_colour_declarations()
        self._check_training_stage()

    def _check_training_stage(self) -> None:
        for name, args, kwargs, doc in (
                ("train", (None, None), {"seed": 0, "epochs": 1},
                 "train(images, labels, *, seed, epochs)"),
                ("training_data", (), {}, "training_data()"),
                ("save_model", (None, None), {}, "save_model(model, path)"),
                ("load_model", (None,), {}, "load_model(path)")):
            if getattr(self, name) is not None:
                _check_callable(name, getattr(self, name), args, kwargs, f"{doc} (or None)")
        if (self.save_model is None) != (self.load_model is None):
            given, missing = (("save_model", "load_model") if self.load_model is None
                              else ("load_model", "save_model"))
            raise TargetError(missing, f"a callable: save_model and load_model come together "
                              f"(both or neither), and {given} is given", "None")

    def _check_colour_declarations(self) -> None:
        norm = self.channel_normalization
        if norm is not None:
            count = self.schema.channels
            ok = (isinstance(norm, tuple) and len(norm) == 2 and all(
                isinstance(part, tuple) and len(part) == count and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in part) for part in norm) and all(v > 0 for v in norm[1]))
            if not ok:
                raise TargetError("channel_normalization", f"None or (mean, std): two tuples "
                                  f"of {count} finite floats (schema.channels), std > 0",
                                  repr(norm))
        if not isinstance(self.accepts_grey, bool):
            raise TargetError("accepts_grey", "a bool", repr(self.accepts_grey))

    def _check_input_shape(self) -> None:
        shape = self.input_shape
        ok = (
            isinstance(shape, tuple)
            and len(shape) == 3
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        )
        if not ok:
            raise TargetError("input_shape", "a tuple of 3 positive ints (C, H, W)", repr(shape))

    def _check_input_range(self) -> None:
        bounds = self.input_range
        ok = (
            isinstance(bounds, tuple)
            and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            and all(math.isfinite(b) for b in bounds)
            and bounds[0] < bounds[1]
        )
        if not ok:
            raise TargetError("input_range", "a tuple (low, high) of finite floats, low < high",
                              repr(bounds))

    def _check_augmentations(self) -> None:
        if not isinstance(self.augmentations, Mapping):
            raise TargetError("augmentations", "a mapping name -> Augmentation",
                              type(self.augmentations).__name__)
        for key, aug in self.augmentations.items():
            if not isinstance(key, str) or not key:
                raise TargetError("augmentations", "non-empty str keys", repr(key))
            if not isinstance(aug, Augmentation):
                raise TargetError(f"augmentations[{key!r}]", "an mlprop.Augmentation",
                                  type(aug).__name__)
        object.__setattr__(self, "augmentations", _frozen_mapping(self.augmentations))

    def _check_str_mapping(self, name: str, value_type: type | tuple[type, ...]) -> None:
        value = getattr(self, name)
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, value_type) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise TargetError(name, f"a mapping str -> {value_type}", repr(value))
        object.__setattr__(self, name, _frozen_mapping(value))

    def __repr__(self) -> str:
        """One line: a failing property prints its arguments, the target among them."""
        return (f"Target(name={self.name!r}, schema={self.schema!r}, "
                f"input_shape={self.input_shape!r}, input_range={self.input_range!r}, ...)")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis's (IPython-style) pretty printer: the same one line, not every field."""
        printer.text(repr(self))

    def threshold(self, name: str, default: float) -> float:
        """The target's override of a statistical threshold, else ``default``."""
        return float(self.thresholds.get(name, default))

    def replace(self, **changes: Any) -> Target:
        """A copy with ``changes`` applied (and validated), like ``dataclasses.replace``."""
        return dataclasses.replace(self, **changes)


def load_target(spec: str) -> Target:
    """Import ``module:attribute`` and return the :class:`Target` it names.

    Raises :class:`TargetError` naming the spec when it is malformed, the module fails to
    import, the attribute is missing or the object is not a ``Target``.
    """
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise TargetError("target spec", "'module:attribute' (e.g. 'mlprop.digits:target')",
                          repr(spec))
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is the user's module's fault
        raise TargetError(f"target spec {spec!r}", f"an importable module {module_name!r}",
                          f"{type(exc).__name__}: {exc}") from exc
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise TargetError(f"target spec {spec!r}",
                          f"an attribute {attribute!r} in module {module_name!r}",
                          "no such attribute") from None
    if not isinstance(value, Target):
        raise TargetError(f"target spec {spec!r}", "an mlprop.Target instance",
                          type(value).__name__)
    return value
