"""Correct augmentations as people write them with ``torchvision.transforms.v2`` or
albumentations, re-written with torch alone (neither library is installed here), and targets
that use them: the augmentation properties must pass on every one of them (issue 24).

Each function honours the augmentation contract: ``fn(images, *, seed, magnitude)`` on uint8
``(N, H, W)`` or ``(N, H, W, 3)``, the same shape and dtype back, the identity at
``magnitude == 0``, deterministic for a seed, random parameters drawn per image from a
generator seeded by ``seed`` (one uniform draw per image and parameter, so a larger magnitude
never does less with the same seed), and the caller's array is never written.

- :func:`random_horizontal_flip`: ``RandomHorizontalFlip(p=0.5 * magnitude)`` per image;
- :func:`random_grayscale`: ``RandomGrayscale(p=0.5 * magnitude)`` per image, ITU-R 601
  weights truncated to uint8 as torchvision does (white becomes 254);
- :func:`hue_jitter`: ``ColorJitter(hue=0.5 * magnitude)`` (RGB -> HSV, rotate H, -> RGB);
- :func:`colour_jitter`: ``ColorJitter(brightness=b, contrast=b, saturation=b)``,
  ``b = 0.4 * magnitude``, the three in a random order per image;
- :func:`subpixel_affine`: albumentations' ``Affine(translate_percent=(-t, t))``,
  ``t = 0.1 * magnitude``: the shift is converted to whole pixels with ``int()``, so a shift
  below one pixel is no shift at all, and the image moves by whole pixels with black fill.

Targets (``--mlprop-target tests.alt_augmentations:<name>``): ``flip``, ``greyscale``,
``hue``, ``jitter``, ``affine`` on the colour reference, ``digits_flip`` and
``digits_affine`` on the digits reference, each with that one augmentation, declared
honestly: a flip changes what a digit is, and greyscale removes the ink colour that the colour
reference's classes depend on (``label_preserving=False``); a small hue rotation, colour
jitter and a whole-pixel shift keep the class.
"""

from __future__ import annotations

import numpy as np
import torch

from mlprop import Augmentation
from mlprop.errors import SchemaError, Violation
from mlprop.target import load_target

FLIP_PROBABILITY = 0.5
GREYSCALE_PROBABILITY = 0.5
MAX_HUE = 0.5
MAX_JITTER = 0.4
MAX_TRANSLATE_PERCENT = 0.1
GREY_WEIGHTS = (0.2989, 0.587, 0.114)
"""torchvision's ``rgb_to_grayscale`` weights (ITU-R 601-2 luma)."""


def _check(images: object, seed: object, magnitude: object, *, colour: bool) -> None:
    problems = []
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        problems.append(Violation("images", "a uint8 ndarray",
                                  f"{type(images).__name__} {getattr(images, 'dtype', '')}"))
    elif colour and (images.ndim != 4 or images.shape[-1] != 3):
        problems.append(Violation("images.shape", "(N, H, W, 3)", str(images.shape)))
    elif not colour and images.ndim not in (3, 4):
        problems.append(Violation("images.shape", "(N, H, W) or (N, H, W, C)",
                                  str(images.shape)))
    if not 0.0 <= float(magnitude) <= 1.0:  # seed: torch.Generator.manual_seed checks it
        problems.append(Violation("magnitude", "a float in [0, 1]", repr(magnitude)))
    if problems:
        raise SchemaError(problems)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _to_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W)`` / ``(N, H, W, C)`` -> a float32 ``(N, C, H, W)`` copy in [0, 1]
    (``ToImage`` + ``ToDtype(float32, scale=True)``); never shares the caller's memory."""
    batch = torch.from_numpy(np.array(images, dtype=np.float32, copy=True)) / 255.0
    if images.ndim == 3:
        return batch.unsqueeze(1)
    return batch.permute(0, 3, 1, 2).contiguous()


def _to_uint8(batch: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """float ``(N, C, H, W)`` in [0, 1] -> uint8 in ``like``'s layout (clip, then round)."""
    pixels = (batch.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    out = pixels.squeeze(1) if like.ndim == 3 else pixels.permute(0, 2, 3, 1)
    return np.ascontiguousarray(out.numpy())


def _grey(batch: torch.Tensor) -> torch.Tensor:
    """Luma of a float ``(N, 3, H, W)`` batch, ``(N, 1, H, W)``."""
    r, g, b = batch.unbind(dim=1)
    return (GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * g + GREY_WEIGHTS[2] * b).unsqueeze(1)


def random_horizontal_flip(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """``RandomHorizontalFlip(p)`` applied to each image on its own, ``p = 0.5 * magnitude``
    (grey or colour)."""
    _check(images, seed, magnitude, colour=False)
    chosen = torch.rand(len(images), generator=_generator(seed)) < FLIP_PROBABILITY * magnitude
    out = images.copy()
    picked = chosen.numpy()
    out[picked] = images[picked][:, :, ::-1]  # axis 2 is the width in (N, H, W[, C])
    return out


def random_grayscale(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """``RandomGrayscale(p)`` per image, ``p = 0.5 * magnitude``: the luma, truncated to uint8
    like torchvision's uint8 path, in all three channels."""
    _check(images, seed, magnitude, colour=True)
    chosen = torch.rand(len(images), generator=_generator(seed)) < (
        GREYSCALE_PROBABILITY * magnitude)
    out = images.copy()
    picked = chosen.numpy()
    if picked.any():
        rgb = torch.from_numpy(images[picked].astype(np.float32)).permute(0, 3, 1, 2)
        luma = _grey(rgb).trunc().clamp(0, 255).to(torch.uint8)
        out[picked] = luma.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()
    return out


def _rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """float ``(N, 3, H, W)`` RGB in [0, 1] -> HSV, hue in [0, 1)."""
    r, g, b = rgb.unbind(dim=1)
    maxc, _ = rgb.max(dim=1)
    minc, _ = rgb.min(dim=1)
    spread = maxc - minc
    grey = spread == 0
    safe = torch.where(grey, torch.ones_like(spread), spread)
    saturation = torch.where(maxc > 0, spread / torch.where(maxc > 0, maxc, 1.0), 0.0)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(grey, torch.zeros_like(hue), (hue / 6.0) % 1.0)
    return torch.stack((hue, saturation, maxc), dim=1)


_SECTORS = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]])
"""For each RGB channel and hue sector 0..5, which of (v, p, q, t) it takes."""


def _hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = hsv.unbind(dim=1)
    scaled = hue * 6.0
    sector = torch.floor(scaled)
    fraction = scaled - sector
    sector = sector.to(torch.int64) % 6
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    candidates = torch.stack((value, p, q, t), dim=1)
    channels = [torch.gather(candidates, 1, _SECTORS[c][sector].unsqueeze(1)) for c in range(3)]
    return torch.cat(channels, dim=1)


def hue_jitter(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """``ColorJitter(hue=h)`` per image, ``h = 0.5 * magnitude``: the hue turns by a factor
    drawn from ``[-h, h]`` of a full circle; grey pixels keep their value."""
    _check(images, seed, magnitude, colour=True)
    if magnitude == 0 or len(images) == 0:
        return images.copy()
    factors = (torch.rand(len(images), generator=_generator(seed)) * 2.0 - 1.0) * (
        MAX_HUE * magnitude)
    hsv = _rgb_to_hsv(_to_nchw(images))
    hsv[:, 0] = (hsv[:, 0] + factors.reshape(-1, 1, 1)) % 1.0
    return _to_uint8(_hsv_to_rgb(hsv), images)


def _blend(image: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    return (ratio * image + (1.0 - ratio) * other).clamp(0.0, 1.0)


def colour_jitter(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """``ColorJitter(brightness=b, contrast=b, saturation=b)`` per image, ``b = 0.4 *
    magnitude``: factors drawn from ``[1 - b, 1 + b]``, applied in a random order per image
    (brightness scales, contrast blends with the image's mean luma, saturation with its luma)."""
    _check(images, seed, magnitude, colour=True)
    if magnitude == 0 or len(images) == 0:
        return images.copy()
    generator = _generator(seed)
    factors = 1.0 + (torch.rand(len(images), 3, generator=generator) * 2.0 - 1.0) * (
        MAX_JITTER * magnitude)
    orders = [torch.randperm(3, generator=generator) for _ in range(len(images))]
    batch = _to_nchw(images)
    out = []
    for index, image in enumerate(batch):
        image = image.unsqueeze(0)
        for op in orders[index].tolist():
            ratio = factors[index, op]
            if op == 0:
                image = (image * ratio).clamp(0.0, 1.0)
            elif op == 1:
                image = _blend(image, _grey(image).mean(), ratio)
            else:
                image = _blend(image, _grey(image), ratio)
        out.append(image)
    return _to_uint8(torch.cat(out), images)


def _translate(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` (H, W[, C]) moved down by ``dy`` and right by ``dx`` whole pixels, black
    fill."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[
        max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def subpixel_affine(images: np.ndarray, *, seed: int, magnitude: float) -> np.ndarray:
    """albumentations' ``Affine(translate_percent=(-t, t))`` per image, ``t = 0.1 *
    magnitude``: the drawn fractions times the sides are cut to whole pixels with ``int()``
    (a shift of 0.9 px is no shift), then the image moves by those pixels, black fill."""
    _check(images, seed, magnitude, colour=False)
    fractions = (torch.rand(len(images), 2, generator=_generator(seed)) * 2.0 - 1.0) * (
        MAX_TRANSLATE_PERCENT * magnitude)
    h, w = images.shape[1:3]
    out = np.empty_like(images)
    for index, (fy, fx) in enumerate(fractions.tolist()):
        out[index] = _translate(images[index], int(fy * h), int(fx * w))
    return out


_colour = load_target("mlprop.colour:target")
_digits = load_target("mlprop.digits:target")


def _with(base, name: str, augmentation: str, fn, *, label_preserving: bool):
    return base.replace(name=f"{base.name}-{name}", augmentations={
        augmentation: Augmentation(fn=fn, label_preserving=label_preserving)})


flip = _with(_colour, "flip", "flip", random_horizontal_flip, label_preserving=False)
greyscale = _with(_colour, "greyscale", "greyscale", random_grayscale, label_preserving=False)
hue = _with(_colour, "hue", "hue", hue_jitter, label_preserving=True)
jitter = _with(_colour, "jitter", "colour_jitter", colour_jitter, label_preserving=True)
affine = _with(_colour, "affine", "affine", subpixel_affine, label_preserving=True)
digits_flip = _with(_digits, "flip", "flip", random_horizontal_flip, label_preserving=False)
digits_affine = _with(_digits, "affine", "affine", subpixel_affine, label_preserving=True)

TARGETS = {"flip": flip, "greyscale": greyscale, "hue": hue, "jitter": jitter,
           "affine": affine, "digits_flip": digits_flip, "digits_affine": digits_affine}
"""Attribute name (``tests.alt_augmentations:<name>``) -> target."""
