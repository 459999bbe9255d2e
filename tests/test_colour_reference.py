"""The colour reference target (``mlprop.colour:target``), the colour faults planted in it,
and colour files through the readers and ``mlprop predict`` (issue 15)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlprop import cli
from mlprop.colour import pipeline
from mlprop.colour.preprocess import SCHEMA
from mlprop.errors import SchemaError
from mlprop.faults import CATALOGUE
from mlprop.faults.sweep import load_properties, run_fault, run_property
from mlprop.image_files import load_images
from mlprop.schema import ImageSchema
from mlprop.target import load_target

GREY = ImageSchema(num_classes=10, min_side=8, max_side=64)
CHW = ImageSchema(num_classes=3, min_side=4, max_side=64, channels=3, layout="CHW")
COLOUR_FAULTS = sorted(name for name, fault in CATALOGUE.items()
                       if fault.applies(load_target("mlprop.colour:target")))
"""Every fault that can be planted in the colour reference (not only the colour-only ones):
each must be caught there by the properties it names for that target (``catches_for``)."""


@pytest.fixture(scope="module")
def colour():
    return load_target("mlprop.colour:target")


@pytest.fixture(scope="module")
def properties():
    return load_properties()


def test_colour_target_declares_its_colour_contract(colour):
    assert colour.schema.layout == "HWC" and colour.schema.channels == 3
    assert colour.input_shape == (3, 32, 32)
    assert colour.channel_normalization is not None and colour.accepts_grey
    images, labels = colour.holdout()
    assert images.shape[1:] == (32, 32, 3) and set(np.unique(labels)) == set(range(20))


@pytest.mark.slow
@pytest.mark.parametrize("fault_name", COLOUR_FAULTS)
def test_colour_fault_is_caught_in_the_colour_target(fault_name, colour, properties):
    fault = CATALOGUE[fault_name]
    assert fault.applies(colour)
    result = run_fault(fault, colour, properties, only=fault.catches_for(colour),
                       max_examples=10)
    assert not result.expected_missed, (
        f"{fault_name} ({fault.description}) slipped past {result.expected_missed}")


def test_colour_only_faults_do_not_apply_to_the_grayscale_reference():
    digits = load_target("mlprop.digits:target")
    for name in ("bgr_channel_order", "normalization_constants_reversed",
                 "channels_last_viewed_as_channels_first", "grey_into_red_channel_only",
                 "guesses_channel_layout"):
        assert not CATALOGUE[name].applies(digits), name
    assert CATALOGUE["augmentation_parameters_drawn_per_batch"].applies(digits)


@pytest.mark.parametrize("name", ["test_preprocess_keeps_each_channel_with_its_normalisation",
                                  "test_preprocess_puts_channel_constants_on_the_channel_axis",
                                  "test_preprocess_rejects_wrong_channels_layout_and_alpha"])
def test_colour_properties_hold_for_the_colour_reference(name, colour, properties):
    assert run_property(properties[name], colour, max_examples=10) is None


def test_grey_images_are_served_as_equal_channels(colour):
    images, _ = colour.holdout()
    grey = images[:4].mean(axis=3).astype(np.uint8)
    np.testing.assert_allclose(colour.predict(grey),
                               colour.predict(np.repeat(grey[..., None], 3, axis=3)), atol=1e-6)


# ------------------------------------------------------------------- readers


def _png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path, format="PNG")
    return path


def _ramp(*shape: int) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) * 7 % 256).astype(np.uint8).reshape(shape)


def test_rgb_png_and_jpeg_keep_their_colour_in_the_schemas_layout(tmp_path: Path):
    rgb = _ramp(20, 24, 3)
    png = _png(tmp_path / "a.png", rgb)
    assert np.array_equal(load_images(png, SCHEMA), rgb[None])
    assert np.array_equal(load_images(png, CHW), np.moveaxis(rgb, 2, 0)[None])
    jpeg = tmp_path / "a.jpg"
    Image.fromarray(np.full((20, 24, 3), (200, 30, 90), np.uint8)).save(jpeg, quality=95)
    loaded = load_images(jpeg, SCHEMA)
    assert loaded.shape == (1, 20, 24, 3)
    assert np.abs(loaded.astype(int) - [200, 30, 90]).max() <= 4
    assert load_images(jpeg).shape == (1, 20, 24)  # no schema: grayscale, as before


def test_readers_refuse_the_wrong_colour_for_the_schema(tmp_path: Path):
    rgb = _png(tmp_path / "rgb.png", _ramp(16, 16, 3))
    grey = _png(tmp_path / "grey.png", _ramp(16, 16))
    with pytest.raises(SchemaError, match=r"rgb.png: images.channels.*grayscale model"):
        load_images(rgb, GREY)
    with pytest.raises(SchemaError, match=r"grey.png: images.channels.*colour model"):
        load_images(grey, SCHEMA)
    rgba = load_images(_png(tmp_path / "rgba.png", _ramp(16, 16, 4)), SCHEMA)
    with pytest.raises(SchemaError) as info:
        SCHEMA.validate(rgba)
    assert info.value.fields == ["images.alpha"]


def test_sixteen_bit_png_is_refused(tmp_path: Path):
    path = tmp_path / "deep.png"
    Image.fromarray(_ramp(9, 9).astype(np.uint16) * 200).save(path)
    for schema in (None, GREY):
        with pytest.raises(SchemaError, match=r"deep.png: images.dtype.*8-bit"):
            load_images(path, schema)


def test_npy_gets_a_batch_axis_by_the_schemas_layout(tmp_path: Path):
    one, batch = _ramp(16, 16, 3), _ramp(2, 16, 16, 3)
    np.save(tmp_path / "one.npy", one)
    np.save(tmp_path / "batch.npy", batch)
    assert load_images(tmp_path / "one.npy", SCHEMA).shape == (1, 16, 16, 3)
    assert load_images(tmp_path / "batch.npy", SCHEMA).shape == (2, 16, 16, 3)
    np.save(tmp_path / "five.npy", batch[None])
    with pytest.raises(SchemaError, match=r"five\.npy: images\.ndim"):
        load_images(tmp_path / "five.npy", SCHEMA)


def test_jpeg_claiming_a_huge_size_is_refused_before_decoding(tmp_path: Path):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    marker = data.index(b"\xff\xc0")  # baseline SOF0: length, precision, height, width
    data[marker + 5:marker + 9] = (3000).to_bytes(2, "big") * 2  # 27 MB, under PIL's cap
    path = tmp_path / "huge.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(SchemaError, match=r"huge.jpg.*declares 3000x3000"):
        load_images(path, SCHEMA)


# ------------------------------------------------------------------- mlprop predict


@pytest.fixture(scope="module")
def colour_package() -> Path:
    return pipeline.reference_package()


def test_predict_reads_rgb_files_for_a_colour_package(colour_package: Path, tmp_path: Path,
                                                      capsys):
    images, _ = pipeline.holdout()
    png = _png(tmp_path / "x.png", images[0])
    np.save(tmp_path / "x.npy", images[1:3])
    assert cli.main(["predict", "--model", str(colour_package), "--json", str(png),
                     str(tmp_path / "x.npy")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["class"] for row in rows] == list(
        pipeline.predict(images[:3]).argmax(axis=1))


def test_predict_refuses_grey_for_colour_and_colour_for_grey(colour_package: Path,
                                                             tmp_path: Path, capsys):
    grey = _png(tmp_path / "grey.png", _ramp(32, 32))
    rgb = _png(tmp_path / "rgb.png", _ramp(32, 32, 3))
    assert cli.main(["predict", "--model", str(colour_package), str(grey)]) == 2
    captured = capsys.readouterr()
    assert "grey.png" in captured.err and "images.channels" in captured.err
    assert captured.out == ""
    from mlprop.digits import pipeline as digits

    assert cli.main(["predict", "--model", str(digits.reference_package()), str(rgb)]) == 2
    captured = capsys.readouterr()
    assert "rgb.png" in captured.err and "grayscale model" in captured.err
    assert captured.out == ""
