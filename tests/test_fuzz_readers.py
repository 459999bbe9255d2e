"""Fuzz the image and vector readers: IDX (plain, gzip), .npy, PNG, monitor vectors.

Every example is a valid seed file mutated (flipped bits, truncation, an edited header field,
inserted/appended bytes, random bytes) or a generated file whose header lies about its size.
The oracle (``tests/fuzzing.py``): a valid array or an ``MlpropError`` naming the file, and
traced peak memory under ``max(2 MiB, 8 x file size)``. Budget: ``MLPROP_FUZZ_EXAMPLES``.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFile

from mlprop.digits.data import read_idx, write_idx
from mlprop.errors import MlpropError
from mlprop.image_files import load_images
from mlprop.monitor.inputs import load_vector_file
from mlprop.schema import ImageSchema
from tests.fuzzing import WORKDIR, check_reader, fuzz_settings, mutations


def ramp(*shape: int) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) * 7 % 256).astype(np.uint8).reshape(shape)


def idx_bytes(array: np.ndarray, *, compress: bool) -> bytes:
    path = write_idx(WORKDIR / ("seed.idx.gz" if compress else "seed.idx"), array)
    return path.read_bytes()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def png_bytes(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


IDX_SEEDS = [idx_bytes(ramp(3, 8, 8), compress=False),
             idx_bytes(np.arange(10, dtype=np.uint8), compress=False),
             idx_bytes(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4), compress=False)]
IDX_GZ_SEEDS = [idx_bytes(ramp(3, 8, 8), compress=True),
                idx_bytes(np.arange(10, dtype=np.int32), compress=True)]
NPY_SEEDS = [npy_bytes(ramp(2, 8, 8)), npy_bytes(np.zeros((3, 5), np.float32)),
             npy_bytes(np.asfortranarray(ramp(4, 6))), npy_bytes(np.arange(7))]
PNG_SEEDS = [png_bytes(ramp(8, 8)), png_bytes(np.stack([ramp(6, 5)] * 3, axis=-1)),
             png_bytes(ramp(9, 7) > 100), png_bytes(ramp(5, 5).astype(np.uint16) * 200),
             png_bytes(np.zeros((7, 7, 4), np.uint8))]
TEXT_SEEDS = [b"1\n2\n3\n0\n", b"0.5\n1e3\nnan\n-2\n", b"a\nb\n2\n\nc\n"]


def jpeg_bytes(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


COLOUR_PNG_SEEDS = [png_bytes(np.stack([ramp(6, 5), ramp(6, 5)[::-1], 255 - ramp(6, 5)], -1)),
                    png_bytes(ramp(7, 6, 4)), png_bytes(ramp(5, 9, 3), optimize=True)]
JPEG_SEEDS = [jpeg_bytes(ramp(8, 8, 3)), jpeg_bytes(ramp(9, 7)),
              jpeg_bytes(ramp(16, 12, 3), progressive=True, quality=50)]
RGB_SCHEMA = ImageSchema(num_classes=3, min_side=1, max_side=64, channels=3, layout="HWC")
CHW_SCHEMA = ImageSchema(num_classes=3, min_side=1, max_side=64, channels=3, layout="CHW")


def write(name: str, data: bytes) -> Path:
    path = WORKDIR / name
    path.write_bytes(data)
    return path


def assert_batch(result: np.ndarray | None) -> None:
    if result is not None:
        assert isinstance(result, np.ndarray) and result.ndim == 3


# --------------------------------------------------------------------------- IDX


@fuzz_settings(2)
@given(data=st.sampled_from(IDX_SEEDS).flatmap(mutations))
def test_fuzz_idx_plain(data: bytes):
    path = write("fuzz-idx3-ubyte", data)
    result = check_reader("idx", read_idx, path)
    if result is not None:
        assert isinstance(result, np.ndarray)
        assert result.nbytes <= len(data)  # never more data than the file holds


@fuzz_settings(2)
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
       code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
       payload=st.binary(max_size=64))
def test_fuzz_idx_header_claims(dims: list[int], code: int, payload: bytes):
    """Generated headers claiming any shape over a short payload."""
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path = write("claims-idx-ubyte", header + payload)
    check_reader("idx", load_images, path)


@fuzz_settings(2)
@given(data=st.sampled_from(IDX_GZ_SEEDS).flatmap(lambda seed: mutations(seed, header=24)))
def test_fuzz_idx_gzip(data: bytes):
    path = write("fuzz-idx3-ubyte.gz", data)
    # a gzip stream inflates: allow its real decompressed size, never a claimed one
    check_reader("idx.gz", read_idx, path, factor=64)


@fuzz_settings(2)
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
       payload=st.binary(max_size=64))
def test_fuzz_idx_gzip_header_claims(dims: list[int], payload: bytes):
    """A valid gzip stream whose IDX header claims any shape."""
    raw = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload
    path = write("claims-idx-ubyte.gz", gzip.compress(raw, mtime=0))
    check_reader("idx.gz", read_idx, path, factor=64)


# --------------------------------------------------------------------------- .npy


@fuzz_settings(2)
@given(data=st.sampled_from(NPY_SEEDS).flatmap(lambda seed: mutations(seed, header=128)))
def test_fuzz_npy(data: bytes):
    assert_batch(check_reader("npy", load_images, write("fuzz.npy", data)))


@fuzz_settings(2)
@given(shape=st.lists(st.integers(-2, 2**40), max_size=5),
       descr=st.sampled_from(["|u1", "<f4", ">i8", "|O", "<U3", "|V0", "|b1", "<c16", "x"]),
       fortran=st.booleans(), payload=st.binary(max_size=64),
       version=st.sampled_from([(1, 0), (2, 0), (3, 0)]))
def test_fuzz_npy_header_claims(shape: list[int], descr: str, fortran: bool, payload: bytes,
                                version: tuple[int, int]):
    """Generated headers (any shape, dtypes with objects, odd versions) over few bytes."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    length = struct.pack("<H" if version == (1, 0) else "<I", len(header))
    data = b"\x93NUMPY" + bytes(version) + length + header + payload
    assert_batch(check_reader("npy", load_images, write("claims.npy", data)))


# --------------------------------------------------------------------------- PNG


@fuzz_settings(2)
@given(data=st.sampled_from(PNG_SEEDS).flatmap(lambda seed: mutations(seed, header=40)))
def test_fuzz_png(data: bytes):
    # a PNG's pixels may legitimately inflate past 8x its size: bound by the real data
    assert_batch(check_reader("png", load_images, write("fuzz.png", data), factor=64))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@fuzz_settings(2)
@given(width=st.integers(0, 2**31 - 1), height=st.integers(0, 2**31 - 1),
       mode=st.sampled_from([(8, 0), (16, 0), (8, 2), (1, 0), (8, 3), (8, 6), (4, 4)]),
       interlace=st.sampled_from([0, 1]), pixels=st.binary(max_size=256))
def test_fuzz_png_header_claims(width: int, height: int, mode: tuple[int, int],
                                interlace: int, pixels: bytes):
    """Valid chunks and CRCs, an IHDR claiming any size, a small IDAT: the claim is refused
    before PIL allocates the image (``ImageFile.load`` never runs for a lie)."""
    bits, colour = mode
    ihdr = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, interlace)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(pixels)) + png_chunk(b"IEND", b""))
    check_reader("png", load_images, write("claims.png", data), factor=64)


def test_png_lying_about_its_size_is_refused_before_decoding(monkeypatch):
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 6, 0, 0, 0)  # 6.4 GB of RGBA
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b""))
    path = write("liar.png", data)

    def never(self: object) -> None:
        raise AssertionError("PIL decoded a PNG whose data is not there")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(MlpropError, match="IDAT: image data inflates to"):
        load_images(path)


@fuzz_settings(2)
@given(data=st.sampled_from(COLOUR_PNG_SEEDS + PNG_SEEDS).flatmap(
    lambda seed: mutations(seed, header=40)), schema=st.sampled_from([RGB_SCHEMA, CHW_SCHEMA]))
def test_fuzz_colour_png(data: bytes, schema: ImageSchema):
    """RGB/RGBA PNGs read for a colour schema: a 4-D batch in its layout, or an error."""
    result = check_reader("png", lambda p: load_images(p, schema), write("colour.png", data),
                          factor=64)
    if result is not None:
        assert result.ndim == 4 and result.shape[schema.channel_axis] in (1, 2, 3, 4)


@fuzz_settings(2)
@given(data=st.sampled_from(JPEG_SEEDS).flatmap(lambda seed: mutations(seed, header=64)),
       schema=st.sampled_from([None, RGB_SCHEMA, CHW_SCHEMA]))
def test_fuzz_jpeg(data: bytes, schema: ImageSchema | None):
    """Mutated JPEGs (the size in the header included): an image or an error naming the
    file, memory bounded by the decoded size the file can honestly hold."""
    result = check_reader("jpeg", lambda p: load_images(p, schema), write("fuzz.jpg", data),
                          factor=64)
    if result is not None:
        assert result.ndim == (3 if schema is None else 4)


# --------------------------------------------------------------------------- vectors


@fuzz_settings(3)
@given(data=st.sampled_from(TEXT_SEEDS).flatmap(mutations))
def test_fuzz_vector_text(data: bytes):
    check_reader("vector", lambda p: load_vector_file(p, "--labels"),
                 write("fuzz.txt", data), factor=32)


@fuzz_settings(3)
@given(lines=st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=8)),
                      max_size=20))
def test_fuzz_vector_generated_lines(lines: list[object]):
    data = "\n".join(map(str, lines)).encode("utf-8", "surrogatepass")
    check_reader("vector", lambda p: load_vector_file(p, "--labels"),
                 write("lines.csv", data), factor=32)


@fuzz_settings(3)
@given(data=st.sampled_from([*NPY_SEEDS, *IDX_SEEDS]).flatmap(mutations),
       suffix=st.sampled_from([".npy", ".idx"]))
def test_fuzz_vector_binary(data: bytes, suffix: str):
    check_reader("vector", lambda p: load_vector_file(p, "--groups"),
                 write(f"vector{suffix}", data))


def test_vector_errors_name_flag_file_and_line():
    path = write("big.txt", b"1\n2\n99999999999999999999\n")
    with pytest.raises(MlpropError, match=r"--labels: .*big.txt line 3: 99999999999999999999"):
        load_vector_file(path, "--labels")
    path = write("latin1.txt", b"1\n\xe9\n")
    with pytest.raises(MlpropError, match=r"--labels: expected UTF-8.*latin1.txt line 2"):
        load_vector_file(path, "--labels")


@pytest.mark.parametrize("compress", [False, True])
def test_idx_empty_shape_with_huge_other_dims_is_refused(compress: bool):
    """Found by the thorough fuzz run: (0, 227, 201567036, 201578570) declares 0 bytes but
    numpy cannot shape it (a raw ValueError escaped read_idx)."""
    raw = bytes([0, 0, 0x08, 4]) + struct.pack(">4I", 0, 227, 201567036, 201578570)
    path = write("empty-huge-idx-ubyte" + (".gz" if compress else ""),
                 gzip.compress(raw, mtime=0) if compress else raw)
    with pytest.raises(MlpropError, match="over the"):
        read_idx(path)
