"""Fuzz the colour readers: PNG (RGB, RGBA, palette with transparency, grey+alpha) and JPEG
(grey, RGB, CMYK) through ``load_images(path, schema)`` with a grayscale, an HWC and a CHW
schema; plus JPEG headers whose frame size is rewritten to anything.

Oracle (``tests/fuzzing.py``): a uint8 batch with the schema's number of axes, or an
``MlpropError`` naming the file; traced peak memory under ``max(2 MiB, 64 x file size)``.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mlprop.image_files import load_images
from mlprop.schema import ImageSchema
from tests.fuzzing import WORKDIR, check_reader, fuzz_settings, mutations

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def ramp(*shape: int) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) * 37 % 256).astype(np.uint8).reshape(shape)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


PALETTE = Image.fromarray(ramp(6, 7, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
PALETTE.info["transparency"] = 0
PNG_SEEDS = [encoded(Image.fromarray(ramp(6, 7, 3)), "PNG"),
             encoded(Image.fromarray(ramp(5, 4, 4)), "PNG"),
             encoded(PALETTE, "PNG", transparency=0),
             encoded(Image.fromarray(ramp(4, 5, 2), "LA"), "PNG"),
             encoded(Image.fromarray(ramp(8, 8, 3)), "PNG", optimize=True)]
JPEG_SEEDS = [encoded(Image.fromarray(ramp(8, 8, 3)), "JPEG", quality=80),
              encoded(Image.fromarray(ramp(9, 6)), "JPEG"),
              encoded(Image.fromarray(ramp(8, 8, 3)).convert("CMYK"), "JPEG"),
              encoded(Image.fromarray(ramp(16, 16, 3)), "JPEG", progressive=True)]
SCHEMAS = [ImageSchema(num_classes=10, min_side=1, max_side=64),
           ImageSchema(num_classes=10, min_side=1, max_side=64, channels=3, layout="HWC"),
           ImageSchema(num_classes=10, min_side=1, max_side=64, channels=3, layout="CHW")]


def read_with(schema: ImageSchema):
    def read(path):
        batch = load_images(path, schema)
        assert isinstance(batch, np.ndarray) and batch.ndim == schema.ndim, batch.shape
        assert batch.dtype == np.uint8
        return batch
    return read


@fuzz_settings(3)
@given(data=st.sampled_from(PNG_SEEDS).flatmap(lambda seed: mutations(seed, header=48)),
       schema=st.sampled_from(SCHEMAS))
def test_fuzz_colour_png(data: bytes, schema: ImageSchema):
    path = WORKDIR / "colour.png"
    path.write_bytes(data)
    check_reader("colour png", read_with(schema), path, factor=64)


@fuzz_settings(3)
@given(data=st.sampled_from(JPEG_SEEDS).flatmap(lambda seed: mutations(seed, header=len(seed))),
       schema=st.sampled_from(SCHEMAS))
def test_fuzz_jpeg(data: bytes, schema: ImageSchema):
    path = WORKDIR / "colour.jpg"
    path.write_bytes(data)
    check_reader("jpeg", read_with(schema), path, factor=64)


def sof_offset(data: bytes) -> int:
    """Offset of the baseline/progressive frame header's height field."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at >= 0:
            return at + 5
    raise AssertionError("no SOF marker in the seed")


@fuzz_settings(3)
@given(seed=st.sampled_from(JPEG_SEEDS), height=st.integers(0, 0xFFFF),
       width=st.integers(0, 0xFFFF), schema=st.sampled_from(SCHEMAS))
def test_fuzz_jpeg_frame_claims(seed: bytes, height: int, width: int, schema: ImageSchema):
    """A valid JPEG whose frame header claims any size: refused before decoding when it
    promises more pixels than the file can hold."""
    at = sof_offset(seed)
    data = seed[:at] + struct.pack(">HH", height, width) + seed[at + 4:]
    path = WORKDIR / "claims.jpg"
    path.write_bytes(data)
    check_reader("jpeg", read_with(schema), path, factor=64)
