"""Holdout images that are also in the training data, exactly or nearly.

Invariant: a holdout image is *leaked* when the training data holds the same bytes (kind
``"exact"``) or the same picture after a small change (kind ``"near"``): a shift of up to
:data:`MAX_SHIFT` pixels, a brightness or contrast change, re-encoding noise (JPEG-like, or
a few grey levels of noise) or a resize. Catches: a holdout split drawn from data that was
also trained on (overlapping splits, a de-duplication that missed re-encoded or shifted
copies, an augmentation cache written into the training folder).

How (linear in the training data, memory bounded by the holdout's index):

1. Exact: a digest of each image's bytes (and shape); a dictionary of the holdout's digests
   is probed with each training image.
2. Near: images are compared at their own size (larger than :data:`WORK` pixels: at that
   side), training images of another size first resized to the holdout's. Each holdout image
   is taken as is and under three resize round trips (one pixel larger and back, one
   smaller and back, and through the training images' size when it differs). For each shift
   ``(dy, dx)`` of up to :data:`MAX_SHIFT` pixels only the part of the picture still visible
   is compared, so whatever fills the uncovered border does not matter. Each part gets a
   64-bit perceptual hash (grey, resized to ``CANON x CANON``, sign of 64 low-frequency DCT
   coefficients against their median: brightness and contrast drop out); the holdout's are
   indexed per shift by multi-index hashing (the hash cut into :data:`CHUNKS` pieces, one
   sorted table each). A training image sharing a piece with an indexed hash, within
   :data:`MAX_HAMMING` bits and with 8x8 thumbnails correlating at least
   :data:`MIN_THUMB_CORRELATION`, is a candidate; each candidate is verified directly: the
   normalised correlation (zero mean, unit norm, colour channels kept) of the two parts must
   reach :data:`MIN_CORRELATION`. The hash only proposes; the correlation decides. The cost is
   linear in the training data (25 shifts per training image) and in the candidates.
3. Flat images (constant, or a range of under :data:`MIN_RANGE` grey levels, e.g. all-black
   frames) carry no picture to compare: they collide trivially, so they are reported only on
   an exact byte match, never as near copies.

Two different handwritten digits of the same class, however alike, are not one picture: on
the digits and colour references no distinct train/holdout pair reaches the threshold (the
closest correlate 0.986 and 0.981). Limits: JPEG at quality 75 on 8x8 digits keeps 251 of
269 copies above the threshold, quality 50 only 5 (an 8x8 image is one JPEG block).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CANON", "MAX_SHIFT", "MIN_CORRELATION", "MIN_RANGE", "WORK", "Leak", "find_leaks"]

CANON = 16
"""Side of the canonical picture every image is compared at."""
MAX_SHIFT = 2
"""Largest shift, in the holdout image's own pixels, recognised as the same picture."""
MIN_CORRELATION = 0.995
"""Normalised correlation of the compared pictures from which a pair is the same picture."""
WORK = 32
"""Images larger than this are compared at this side (aspect kept); shifts count its pixels."""
MIN_RANGE = 16
"""Grey-level range under which an image is flat: reported only on an exact byte match."""
CHUNKS = 8
"""Pieces of the 64-bit hash; a candidate shares at least one piece exactly."""
MAX_HAMMING = 20
"""Hash distance beyond which a candidate is dropped before the correlation is computed."""
MIN_THUMB_CORRELATION = 0.95
"""Correlation of the 8x8 grey thumbnails below which a candidate is dropped before the full
comparison (a copy's thumbnails correlate far above it)."""


@dataclass(frozen=True)
class Leak:
    """One holdout image found in the training data.

    ``batch`` and ``row`` locate the training copy (``batch`` is 0 for a single
    ``(images, labels)`` pair); ``kind`` is ``"exact"`` (same bytes) or ``"near"``;
    ``correlation`` is the normalised correlation of the canonical pictures (1.0 for exact);
    ``shift`` the holdout shift ``(dy, dx)`` in pixels under which it matched best.
    """

    holdout_index: int
    batch: int
    row: int
    kind: str
    correlation: float
    shift: tuple[int, int] = (0, 0)

    def describe(self) -> str:
        where = f"training batch {self.batch} row {self.row}"
        if self.kind == "exact":
            return f"holdout image {self.holdout_index} == {where} (same bytes)"
        return (f"holdout image {self.holdout_index} ~ {where} (near copy: correlation "
                f"{self.correlation:.3f}, shift {self.shift})")


def _digest(image: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.digest()


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(CANON)
# the 64 lowest-frequency coefficients after the DC term, ordered by frequency
_ORDER = sorted(((u, v) for u in range(CANON) for v in range(CANON)), key=lambda p: (
    p[0] + p[1], p[0]))[1:65]
_ROWS = np.array([p[0] for p in _ORDER])
_COLS = np.array([p[1] for p in _ORDER])
_WEIGHTS = (np.uint64(1) << np.arange(64, dtype=np.uint64))


def _hashes(grey: np.ndarray) -> np.ndarray:
    """64-bit DCT hashes ``(N,)`` of canonical grey pictures."""
    dct = _DCT.astype(np.float32)
    coeffs = dct @ grey.astype(np.float32) @ dct.T
    low = coeffs[:, _ROWS, _COLS]
    bits = low > np.median(low, axis=1, keepdims=True)
    return (bits.astype(np.uint64) * _WEIGHTS).sum(axis=1, dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x.view(np.uint8).reshape(len(x), 8), axis=1).sum(axis=1)



def _resize(x: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """``(N, H, W, C)`` float tensor resized (bilinear) to ``size``."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    out = F.interpolate(x.permute(0, 3, 1, 2), size=size, mode="bilinear",
                        antialias=antialias, align_corners=False)
    return out.permute(0, 2, 3, 1)


def _working(batch_last: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    return _resize(torch.from_numpy(np.ascontiguousarray(batch_last, dtype=np.float32)), size)


def _round_trips(x: torch.Tensor, which: np.ndarray,
                 via: tuple[int, int] | None = None) -> torch.Tensor:
    """Each picture under its transform: 0 as is, 1 and 2 resized one pixel larger /
    smaller and back (bilinear, as a resizing copy would be made), 3 resized to ``via`` (the
    size of training images that differ in size from the holdout) and back the way
    :func:`find_leaks` brings them to the holdout's size."""
    out = x.clone()
    h, w = x.shape[1:3]
    trips = [(1, (h + 1, w + 1), False), (2, (h - 1, w - 1), False)]
    if via is not None:
        trips.append((3, via, True))
    for t, size, antialias_back in trips:
        sel = torch.from_numpy(np.nonzero(which == t)[0])
        if len(sel) and min(size) >= 1:
            mid = torch.clamp(torch.round(_resize(x[sel], size, antialias=False)), 0, 255)
            out[sel] = torch.clamp(torch.round(_resize(mid, (h, w), antialias=antialias_back)),
                                   0, 255)
    return out


_SHIFTS = [(dy, dx) for dy in range(-MAX_SHIFT, MAX_SHIFT + 1)
           for dx in range(-MAX_SHIFT, MAX_SHIFT + 1)]


def _source(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The part of each original picture still visible after a shift by ``(dy, dx)``."""
    h, w = x.shape[1:3]
    return x[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]


def _destination(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Where that part lies in the shifted copy (whatever fills the uncovered border)."""
    h, w = x.shape[1:3]
    return x[:, max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)]


def _hash_pictures(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hashes of the pictures and their normalised 8x8 grey thumbnails
    ``(N, 64)`` (a cheap first verification)."""
    grey = x.mean(dim=3, keepdim=True)
    small = _resize(grey, (CANON, CANON))[..., 0]
    thumbs = F.avg_pool2d(small[:, None], CANON // 8)[:, 0].reshape(len(small), 64)
    thumbs = thumbs - thumbs.mean(dim=1, keepdim=True)
    thumbs = thumbs / torch.clamp(thumbs.norm(dim=1, keepdim=True), min=1e-9)
    return _hashes(small.numpy()), thumbs.numpy()


def _flat(x: torch.Tensor) -> np.ndarray:
    return ((x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))) < MIN_RANGE).numpy()


def _correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denom = torch.clamp(a.norm(dim=1) * b.norm(dim=1), min=1e-9)
    return ((a * b).sum(dim=1) / denom).numpy()


class _HoldoutIndex:
    """The holdout's byte digests, its pictures under each transform, and for each shift the
    hashes and thumbnails of their visible part in a multi-index hash table. Memory grows with
    the holdout (per image: 3 working pictures, 75 hashes and 75 thumbnails of 64 halves),
    never with the training data."""

    def __init__(self, holdout_last: np.ndarray, via: tuple[int, int] | None = None) -> None:
        self.transforms = 3 if via is None else 4
        self.exact: dict[bytes, list[int]] = {}
        for i, image in enumerate(holdout_last):
            self.exact.setdefault(_digest(image), []).append(i)
        h, w = holdout_last.shape[1:3]
        scale = min(1.0, WORK / max(h, w))
        self.size = (max(1, round(h * scale)), max(1, round(w * scale)))
        pictures = _working(holdout_last, self.size)
        self.n = len(holdout_last)
        informative = np.nonzero(~_flat(pictures))[0]
        # variant v is holdout image ids[v] // transforms under transform ids[v] % transforms
        k = self.transforms
        self.ids = (np.repeat(informative, k) * k + np.tile(np.arange(k), len(informative)))
        self.variants = (_round_trips(pictures[torch.from_numpy(self.ids // k)],
                                      self.ids % k, via) if len(self.ids)
                         else pictures[:0]).to(torch.float16 if scale < 1 else torch.uint8)
        self.tables: list[tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]
        self.tables = []
        bits = 64 // CHUNKS
        for dy, dx in _SHIFTS:
            hashes, thumbs = _hash_pictures(_source(self.variants.float(), dy, dx))
            chunks = []
            for c in range(CHUNKS):
                pieces = (hashes >> np.uint64(c * bits)) & np.uint64((1 << bits) - 1)
                order = np.argsort(pieces, kind="stable")
                chunks.append((pieces[order], order))
            self.tables.append((hashes, thumbs.astype(np.float16), chunks))

    def candidates(self, s: int, hashes: np.ndarray, thumbs: np.ndarray, rows_in: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``(training row, variant)`` whose hashes under shift ``s`` share a piece,
        lie within :data:`MAX_HAMMING` bits, and whose thumbnails correlate at least
        :data:`MIN_THUMB_CORRELATION`."""
        table_hashes, table_thumbs, chunks = self.tables[s]
        bits = 64 // CHUNKS
        rows_all, pos_all = [], []
        for c, (sorted_pieces, order) in enumerate(chunks):
            pieces = (hashes[rows_in] >> np.uint64(c * bits)) & np.uint64((1 << bits) - 1)
            lo = np.searchsorted(sorted_pieces, pieces, side="left")
            counts = np.searchsorted(sorted_pieces, pieces, side="right") - lo
            total = int(counts.sum())
            if not total:
                continue
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            rows_all.append(np.repeat(rows_in, counts))
            pos_all.append(order[starts + np.arange(total)])
        if not rows_all:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        width = len(table_hashes)
        keys = np.unique(np.concatenate(rows_all) * width + np.concatenate(pos_all))
        rows, pos = keys // width, keys % width
        close = _popcount(hashes[rows] ^ table_hashes[pos]) <= MAX_HAMMING
        rows, pos = rows[close], pos[close]
        alike = (np.einsum("pd,pd->p", thumbs[rows], table_thumbs[pos].astype(np.float32))
                 >= MIN_THUMB_CORRELATION)
        return rows[alike], pos[alike]


def _near_pairs(index: _HoldoutIndex, pictures: torch.Tensor, usable: np.ndarray
                ) -> dict[tuple[int, int], tuple[float, tuple[int, int]]]:
    """``{(holdout index, row): (correlation, shift)}`` for the rows of one chunk of a
    training batch that are near copies."""
    found: dict[tuple[int, int], tuple[float, tuple[int, int]]] = {}
    rows_in = np.nonzero(usable)[0]
    if not len(rows_in):
        return found
    for s, (dy, dx) in enumerate(_SHIFTS):
        dest = _destination(pictures, dy, dx)
        rows, pos = index.candidates(s, *_hash_pictures(dest), rows_in)
        if not len(rows):
            continue
        holdout = index.ids[pos] // index.transforms
        variant = index.variants[torch.from_numpy(pos)].float()
        corr = _correlation(_source(variant, dy, dx), dest[torch.from_numpy(rows)])
        for r, i, c in zip(rows.tolist(), holdout.tolist(), corr.tolist(), strict=True):
            if c >= MIN_CORRELATION and c > found.get((i, r), (-2.0,))[0]:
                found[(i, r)] = (c, (dy, dx))
    return found


def find_leaks(holdout_images: np.ndarray, training_batches: Iterable[tuple[np.ndarray, Any]],
               schema: Any, *, max_pairs: int = 100, chunk: int = 4096) -> list[Leak]:
    """Every holdout image found in the training batches (exact bytes, or a near copy), up
    to ``max_pairs`` pairs (scanning stops once that many are found), in training order.

    ``holdout_images`` and each batch's images are uint8 in ``schema``'s layout;
    ``training_batches`` yields ``(images, labels)`` pairs, e.g.
    :func:`mlprop.training_data.training_batches`. One pair per (holdout image, training
    row): a training row matching several holdout images gives one pair for each. Exact pairs
    are reported even for flat images; near pairs never involve a flat image. Batches are
    read one at a time and processed ``chunk`` rows at a time.
    """
    if max_pairs < 1:
        raise ValueError(f"find_leaks: max_pairs must be >= 1, got {max_pairs}")
    holdout_last = schema.to_channels_last(holdout_images)
    indexes = {None: _HoldoutIndex(holdout_last)}
    leaks: list[Leak] = []
    for b, (images, _labels) in enumerate(training_batches):
        last = schema.to_channels_last(images)
        via = None if last.shape[1:3] == holdout_last.shape[1:3] else tuple(last.shape[1:3])
        if via not in indexes:  # one more index per training size that differs
            indexes[via] = _HoldoutIndex(holdout_last, via)
        index = indexes[via]
        for start in range(0, len(last), chunk):
            part = last[start:start + chunk]
            exact = set()
            for r, image in enumerate(part):
                for i in index.exact.get(_digest(image), ()):
                    exact.add((i, r))
                    leaks.append(Leak(i, b, start + r, "exact", 1.0))
            pictures = _working(part, index.size)
            near = _near_pairs(index, pictures, ~_flat(pictures))
            for (i, r), (c, shift) in sorted(near.items(), key=lambda kv: kv[0][::-1]):
                if (i, r) not in exact:
                    leaks.append(Leak(i, b, start + r, "near", round(c, 4), shift))
            if len(leaks) >= max_pairs:
                break
        if len(leaks) >= max_pairs:
            break
    leaks.sort(key=lambda leak: (leak.batch, leak.row, leak.holdout_index))
    return leaks[:max_pairs]
