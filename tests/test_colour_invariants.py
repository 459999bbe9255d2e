"""Orientation and the declared per-channel normalisation (issue 24): the two preprocess
properties pass on correct pipelines that crop, letterbox, invert or convert to grey, and
catch the transposed, flipped, max-scaled and twice-normalised faults with a message naming
the bug, on both references."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlprop import ImageSchema, Target
from mlprop.errors import TargetError
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties, property_outcome, run_fault
from mlprop.target import load_target

colour_preprocess = importlib.import_module("mlprop.colour.preprocess")
digits_preprocess = importlib.import_module("mlprop.digits.preprocess")

ORIENTATION = "test_preprocess_keeps_the_image_orientation"
NORMALISATION = "test_preprocess_normalises_constant_images_with_the_declared_constants"
NEW_FAULTS = ("transposed_in_preprocess", "upside_down_in_preprocess",
              "scaled_by_image_maximum", "normalized_twice")
GREY = digits_preprocess.SCHEMA
RGB = colour_preprocess.SCHEMA


@pytest.fixture(scope="module")
def properties():
    return load_properties()


@pytest.fixture(scope="module")
def references():
    return {name: load_target(f"mlprop.{name}:target") for name in ("digits", "colour")}


def _outcome(properties, name, target):
    return property_outcome(properties[name], target)


# ---------------------------------------------------------------- correct pipelines


def _tensor(images: np.ndarray, schema: ImageSchema) -> torch.Tensor:
    """(N, C, H, W) float32 0..255 from a batch in ``schema``'s layout (a copy)."""
    schema.validate(images)
    last = schema.to_channels_last(np.asarray(images))
    return torch.from_numpy(np.array(last, np.float32)).permute(0, 3, 1, 2).contiguous()


def _resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if batch.shape[0] == 0 or tuple(batch.shape[-2:]) == size:
        return batch
    return F.interpolate(batch, size=size, mode="bilinear", align_corners=False,
                         antialias=True).clamp(0, 255)


def _normalise(batch: torch.Tensor, mean, std) -> np.ndarray:
    mean_t, std_t = (torch.tensor(v, dtype=torch.float32).reshape(1, -1, 1, 1)
                     for v in (mean, std))
    return ((batch / 255.0 - mean_t) / std_t).numpy()


def centre_crop(images: np.ndarray) -> np.ndarray:
    """``Resize(37)`` (shorter side, aspect kept) + ``CenterCrop(32)`` + ``Normalize``."""
    batch = _tensor(images, RGB)
    if len(batch):
        h, w = batch.shape[-2:]
        scale = 37 / min(h, w)
        batch = _resize(batch, (max(37, round(h * scale)), max(37, round(w * scale))))
        top, left = (batch.shape[2] - 32) // 2, (batch.shape[3] - 32) // 2
        batch = batch[:, :, top:top + 32, left:left + 32]
    else:
        batch = batch.new_zeros((0, 3, 32, 32))
    return _normalise(batch, colour_preprocess.MEAN, colour_preprocess.STD)


def letterbox(images: np.ndarray) -> np.ndarray:
    """Pads to a square with black (one line more at the bottom/right when the padding is
    odd), resizes to 28x28, scales to [0, 1]."""
    batch = _tensor(images, GREY)
    if len(batch):
        h, w = batch.shape[-2:]
        side = max(h, w)
        batch = F.pad(batch, ((side - w) // 2, side - w - (side - w) // 2,
                              (side - h) // 2, side - h - (side - h) // 2))
    return _normalise(_resize(batch, (28, 28)) if len(batch) else batch.new_zeros(
        (0, 1, 28, 28)), (0.0,), (1.0,))


def inverted(images: np.ndarray) -> np.ndarray:
    """Resizes to 28x28 and maps ink to positive: ``1 - x / 255`` (a falling scale)."""
    batch = _resize(_tensor(images, GREY), (28, 28))
    return (1.0 - batch / 255.0).reshape(len(images), 1, 28, 28).numpy()


def luma(images: np.ndarray) -> np.ndarray:
    """RGB -> one grey channel (ITU-R 601 weights) at a non-square 20x24, scaled to [0, 1]."""
    batch = _resize(_tensor(images, RGB), (20, 24))
    weights = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
    return ((batch * weights).sum(dim=1, keepdim=True) / 255.0).clamp(0, 1).numpy()


def standardised(images: np.ndarray) -> np.ndarray:
    """Per-image standardisation (``tf.image.per_image_standardization``): brightness does
    not reach the model, constant images all come out as zeros."""
    batch = _resize(_tensor(images, GREY), (28, 28)).reshape(len(images), -1) / 255.0
    mean = batch.mean(dim=1, keepdim=True)
    std = batch.std(dim=1, correction=0, keepdim=True).clamp(min=1 / 28)
    return ((batch - mean) / std).reshape(len(images), 1, 28, 28).numpy()


PIPELINES = {
    "centre-crop": Target(name="centre-crop", schema=RGB, input_shape=(3, 32, 32),
                          input_range=colour_preprocess.INPUT_RANGE, preprocess=centre_crop,
                          channel_normalization=(colour_preprocess.MEAN,
                                                 colour_preprocess.STD)),
    "letterbox": Target(name="letterbox", schema=GREY, input_shape=(1, 28, 28),
                        input_range=(0.0, 1.0), preprocess=letterbox,
                        channel_normalization=((0.0,), (1.0,))),
    "inverted": Target(name="inverted", schema=GREY, input_shape=(1, 28, 28),
                       input_range=(0.0, 1.0), preprocess=inverted),
    "luma": Target(name="luma", schema=RGB, input_shape=(1, 20, 24), input_range=(0.0, 1.0),
                   preprocess=luma, channel_normalization=(colour_preprocess.MEAN,
                                                           colour_preprocess.STD)),
    "standardised": Target(name="standardised", schema=GREY, input_shape=(1, 28, 28),
                           input_range=(-28.0, 28.0), preprocess=standardised),
}


def test_the_pipelines_do_what_they_claim():
    """The crop keeps the centre, the letterbox pads, the luma pipeline is non-square."""
    rgb = np.zeros((1, 16, 64, 3), np.uint8)
    rgb[:, :, :8] = 255  # lit far left: cropped away by the centre crop
    assert np.allclose(centre_crop(rgb), centre_crop(np.zeros_like(rgb)))
    tall = np.full((1, 64, 8), 255, np.uint8)
    assert letterbox(tall)[0, 0, :, 0].max() == 0 and letterbox(tall)[0, 0, 14, 14] == 1
    assert luma(rgb).shape == (1, 1, 20, 24)
    assert np.allclose(standardised(np.full((2, 8, 8), 9, np.uint8)), 0, atol=1e-5)


@pytest.mark.parametrize("name", ["centre-crop", "letterbox", "inverted", "luma"])
def test_orientation_holds_for_correct_pipelines_that_crop_pad_invert_or_convert(name,
                                                                                properties):
    assert _outcome(properties, ORIENTATION, PIPELINES[name]).status == "passed"


@pytest.mark.parametrize("name", ["centre-crop", "letterbox", "inverted", "luma"])
@pytest.mark.parametrize("fault_name", ["transposed_in_preprocess", "upside_down_in_preprocess"])
def test_orientation_catches_the_faults_in_those_pipelines(name, fault_name, properties):
    faulty = CATALOGUE[fault_name].inject(PIPELINES[name])
    outcome = _outcome(properties, ORIENTATION, faulty)
    assert outcome.status == "failed"
    assert ("transposed" if fault_name.startswith("transposed") else "upside down"
            ) in outcome.message


def _mirrored(target: Target) -> Target:
    axis = target.schema.side_axes[1]
    return target.replace(preprocess=lambda images: target.preprocess(
        np.ascontiguousarray(np.flip(images, axis=axis))))


def _quarter_turned(target: Target) -> Target:
    axes = target.schema.side_axes
    return target.replace(preprocess=lambda images: target.preprocess(
        np.ascontiguousarray(np.rot90(images, axes=axes))))


def test_orientation_names_a_left_right_mirror_and_a_quarter_turn(properties, references):
    for target in references.values():
        mirrored = _outcome(properties, ORIENTATION, _mirrored(target))
        assert mirrored.status == "failed" and "mirrored left to right" in mirrored.message
        turned = _outcome(properties, ORIENTATION, _quarter_turned(target))
        assert turned.status == "failed" and "height and width are swapped" in turned.message


def test_per_image_standardisation_is_checked_for_transposition_not_for_flips(properties):
    """Constants do not reach the model, so which way is brighter is unknown: the flip check
    cannot decide (not checked, with the reason); a transposition is still caught."""
    target = PIPELINES["standardised"]
    clean = _outcome(properties, ORIENTATION, target)
    assert clean.status == "not checked" and "per-image standardisation" in clean.message
    swapped = CATALOGUE["transposed_in_preprocess"].inject(target)
    assert _outcome(properties, ORIENTATION, swapped).status == "failed"


@pytest.mark.parametrize("name", ["centre-crop", "letterbox"])
def test_declared_normalisation_holds_for_correct_pipelines(name, properties):
    assert _outcome(properties, NORMALISATION, PIPELINES[name]).status == "passed"


def test_normalisation_is_not_checked_without_a_declaration_or_a_channel_match(properties):
    undeclared = _outcome(properties, NORMALISATION, PIPELINES["inverted"])
    assert undeclared.status == "not checked"
    assert undeclared.message == "the target has no Target.channel_normalization"
    grey_model = _outcome(properties, NORMALISATION, PIPELINES["luma"])
    assert grey_model.status == "not checked" and "model input has 1" in grey_model.message


def test_normalisation_catches_max_scaling_in_a_pipeline_without_mean_and_std(properties):
    faulty = CATALOGUE["scaled_by_image_maximum"].inject(PIPELINES["letterbox"])
    outcome = property_outcome(properties[NORMALISATION], faulty)
    assert outcome.status == "failed" and "declared channel_normalization" in outcome.message


def test_normalisation_catches_constants_that_differ_from_what_preprocess_does(properties,
                                                                              references):
    digits = references["digits"]
    wrong = digits.replace(channel_normalization=((0.5,), (0.3081,)))
    assert _outcome(properties, NORMALISATION, wrong).status == "failed"


# ---------------------------------------------------------------- the references


def test_digits_declares_the_constants_its_preprocess_uses(references):
    digits = references["digits"]
    assert digits.channel_normalization == ((digits_preprocess.MEAN,), (digits_preprocess.STD,))
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    images = np.stack([np.full((9, 13), v, np.uint8) for v in levels.ravel()])
    out = digits_preprocess.preprocess(images)
    expected = (np.arange(256) / 255 - digits_preprocess.MEAN) / digits_preprocess.STD
    assert np.abs(out - expected[:, None, None, None]).max() < 1e-4


def test_a_grey_target_declares_one_mean_and_one_std():
    base = load_target("mlprop.digits:target")
    assert base.replace(channel_normalization=((0.1,), (0.2,))).channel_normalization
    for wrong in (((0.1, 0.1), (0.2, 0.2)), ((0.1,), (0.0,)), (0.1, 0.2)):
        with pytest.raises(TargetError, match="channel_normalization"):
            base.replace(channel_normalization=wrong)


@pytest.mark.parametrize("name", [ORIENTATION, NORMALISATION,
                                  "test_preprocess_keeps_each_channel_with_its_normalisation"])
@pytest.mark.parametrize("reference", ["digits", "colour"])
def test_the_properties_hold_for_both_references(name, reference, properties, references):
    assert _outcome(properties, name, references[reference]).status == "passed"


MESSAGES = {
    "transposed_in_preprocess": "height and width are swapped",
    "upside_down_in_preprocess": "flipped upside down",
    "scaled_by_image_maximum": "scaled by the image's own maximum instead of 255",
    "normalized_twice": "normalised twice",
}


@pytest.mark.parametrize("fault_name", NEW_FAULTS)
@pytest.mark.parametrize("reference", ["digits", "colour"])
def test_new_faults_apply_to_both_references_and_are_caught_by_name(fault_name, reference,
                                                                    properties, references):
    target, fault = references[reference], CATALOGUE[fault_name]
    assert fault.applies(target)
    result = run_fault(fault, target, properties, only=fault.catches_for(target))
    assert not result.expected_missed, f"{fault_name} slipped past {result.expected_missed}"
    catcher = ORIENTATION if fault_name in NEW_FAULTS[:2] else NORMALISATION
    assert MESSAGES[fault_name] in _full_message(properties[catcher], fault.inject(target))


def _full_message(prop, target) -> str:
    """The whole failure text (invariant, expected and actual) of ``prop`` on ``target``."""
    from mlprop.faults.sweep import _without_shrinking

    try:
        _without_shrinking(prop, None)(target=target)
    except AssertionError as exc:
        return str(exc)
    return ""


def test_the_faults_stay_out_where_they_cannot_be_planted():
    fixed = Target(name="fixed", schema=ImageSchema(num_classes=2, min_side=8, max_side=16,
                                                    size=(8, 16)),
                   input_shape=(1, 8, 16), input_range=(0.0, 1.0), preprocess=lambda x: x)
    assert not CATALOGUE["transposed_in_preprocess"].applies(fixed)
    for name in ("scaled_by_image_maximum", "normalized_twice"):
        assert not CATALOGUE[name].applies(fixed)
        assert not CATALOGUE[name].applies(PIPELINES["luma"])
