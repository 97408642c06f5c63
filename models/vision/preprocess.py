"""Turn a free-form grey image of one digit into an MNIST-like 28×28 (ink bright on black).

MNIST digits were size-normalised to fit a 20×20 box (keeping the aspect ratio), anti-aliased,
and placed in a 28×28 field so that their centre of mass sits at the centre. Real inputs (phone
photos, printed digits, canvas drawings) differ in polarity, background, size, position and stroke
width, so `preprocess_gray` does, in order:

1. reduce to at most `work_side` pixels on the longest side (area averaging);
2. automatic polarity: the paper level is the median of the border ring; ink is whichever side of
   it (darker or lighter) the extreme pixels lie on. Dark-on-light is inverted;
3. background removal: an uneven background (shadow, tint, vignetting) is estimated with a large
   grey opening (a "top-hat" filter) and subtracted;
4. a blank check (ink contrast below `min_contrast` → `NoInkFound`), then a noise threshold and
   removal of specks (connected components much smaller than the largest one);
5. crop to the ink, even out the stroke width (dilate hair-lines, erode very bold strokes) so it
   lands in MNIST's range after scaling, fit into 20×20, and centre by centre of mass in 28×28.

Pure numpy / scipy / Pillow: no torch, no I/O. Decoding uploaded bytes lives in services/image_io.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from models.vision import PreprocessConfig


class NoInkFound(ValueError):
    """The image holds no digit-like ink (blank, uniform, or only specks)."""


@dataclass(frozen=True)
class Preprocessed:
    image: np.ndarray  # (28, 28) float32 in [0, 1], ink = 1: exactly what the network sees
    inverted: bool  # True when dark ink on light paper was flipped to MNIST polarity
    contrast: float  # ink-vs-paper contrast in [0, 1]
    bbox: tuple[int, int, int, int]  # ink box (left, top, right, bottom) in the working image
    work_size: tuple[int, int]  # (width, height) of the working image
    stroke_px: float  # estimated stroke width in the 20×20 box before correction
    scale: float = 1.0  # working pixels per input pixel: bbox / scale is in input pixels


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image to (width, height): area averaging down, bicubic up."""
    h, w = array.shape
    if (w, h) == size:
        return array.astype(np.float32, copy=False)
    shrinking = size[0] < w or size[1] < h
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(array.astype(np.float32)).resize(size, method), dtype=np.float32)


def reduce_to(gray: np.ndarray, max_side: int) -> np.ndarray:
    h, w = gray.shape
    scale = max_side / max(h, w)
    if scale >= 1:
        return gray.astype(np.float32, copy=False)
    return _resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))))


def _border(a: np.ndarray) -> np.ndarray:
    h, w = a.shape
    r = max(1, round(0.04 * min(h, w)))
    return np.concatenate([a[:r].ravel(), a[-r:].ravel(), a[:, :r].ravel(), a[:, -r:].ravel()])


def to_bright_ink(gray: np.ndarray, stats_step: int = 1) -> tuple[np.ndarray, bool]:
    """Return (image with ink bright on dark, whether it was inverted).

    `stats_step` > 1 takes the extreme levels from every n-th row and column (see `ink_map`).
    """
    paper = float(np.median(_border(gray)))
    sample = gray[::stats_step, ::stats_step] if stats_step > 1 else gray
    low, high = np.percentile(sample, [0.5, 99.5])
    dark_ink = (paper - low) > (high - paper)
    return (1.0 - gray if dark_ink else gray), bool(dark_ink)


def _ring_spread(a: np.ndarray) -> float:
    """How much the paper level varies around the edge: 8 border segments, 20th percentile of each."""
    h, w = a.shape
    r = max(1, round(0.04 * min(h, w)))
    segments = [
        a[:r, : w // 2], a[:r, w // 2 :], a[-r:, : w // 2], a[-r:, w // 2 :],
        a[: h // 2, :r], a[h // 2 :, :r], a[: h // 2, -r:], a[h // 2 :, -r:],
    ]  # fmt: skip
    levels = [float(np.percentile(seg, 20)) for seg in segments if seg.size]
    # Segments covered by ink (a stroke running along the edge of a tight crop) say nothing about
    # the paper: ignore those above half the brightest ink.
    ceiling = 0.5 * float(a.max())
    paper = [level for level in levels if level <= ceiling]
    return max(paper) - min(paper) if len(paper) >= 2 else 0.0


def remove_background(ink: np.ndarray) -> np.ndarray:
    """Subtract the paper level; for uneven paper, a smooth estimate of it (white top-hat)."""
    h, w = ink.shape
    paper = float(np.median(_border(ink)))
    if _ring_spread(ink) < 0.05:  # even paper: a constant level, and thick strokes stay intact
        return np.clip(ink - paper, 0, None)
    side = min(h, w)
    k = max(5, int(0.3 * side) | 1)  # wider than any stroke, so the opening keeps only the paper
    small_scale = min(1.0, 64 / side)  # estimate the background at low resolution: cheap and smooth
    small = (
        _resize(ink, (max(1, round(w * small_scale)), max(1, round(h * small_scale))))
        if small_scale < 1
        else ink
    )
    ks = max(3, int(k * small_scale) | 1)
    # Pad with the paper level rather than reflecting: a stroke that touches the edge (a tightly
    # cropped 7's bar) must not be mirrored into a band thick enough to pass for background.
    pad = ks // 2 + 1
    paper_level = float(np.percentile(small, 10))
    padded = np.pad(small, pad, mode="constant", constant_values=paper_level)
    opened = ndimage.grey_opening(padded, size=(ks, ks))[pad:-pad, pad:-pad]
    background = ndimage.uniform_filter(opened, size=ks, mode="nearest")
    # Whether the estimate is flat is read at the low resolution it was made at: enlarging a smooth
    # surface moves its 5th and 95th percentiles by next to nothing, and sorting it costs far less.
    spread = float(np.percentile(background, 95) - np.percentile(background, 5))
    if spread < 0.04:  # the estimate itself is flat: a constant level is enough
        return np.clip(ink - paper, 0, None)
    if small_scale < 1:
        background = _resize(background, (w, h))
    return np.clip(ink - background, 0, None)


def remove_rules(level: np.ndarray, span: float = 0.85, max_thickness: float = 0.03) -> np.ndarray:
    """Erase ruled or squared paper lines: thin, straight runs across nearly the whole image.

    A run must cover `span` of the width (or height) in one pixel row (column), the band of such
    rows must be thinner than `max_thickness` of the other side, and there must be at least two
    such bands (ruled paper), so digit strokes survive: even the bar of a tightly cropped, thin
    printed 7 is a single band. Where a line crosses the digit, the stroke loses only the line's width.
    """
    out = level
    ink = (level > 0).astype(np.uint8)
    for axis in (1, 0):  # 1: horizontal lines (runs along x), 0: vertical lines
        length = level.shape[axis]
        other = level.shape[1 - axis]
        run = max(15, int(span * length))
        if run > length or not (ink.sum(axis=axis) >= run).any():
            continue  # no row (column) holds that much ink at all: no run that long either (cheap test)
        opened = ndimage.maximum_filter1d(ndimage.minimum_filter1d(ink, run, axis=axis), run, axis=axis)
        if not opened.any():
            continue
        rows = opened.any(axis=axis)  # which rows (columns) hold a long run
        bands, count = ndimage.label(rows)
        thin_limit = max(3, int(max_thickness * other))
        for band in range(1, count + 1):
            index = np.flatnonzero(bands == band)
            if len(index) > thin_limit:
                continue  # a thick bar: part of the digit, keep it
            if count == 1 and _touches_other_ink(ink, opened, index, axis):
                continue  # one line joined to other strokes: maybe the bar of a 7, keep it
            if axis == 1:
                out = out.copy() if out is level else out
                out[index, :] = np.where(opened[index, :] > 0, 0, out[index, :])
            else:
                out = out.copy() if out is level else out
                out[:, index] = np.where(opened[:, index] > 0, 0, out[:, index])
    return out


def _touches_other_ink(ink: np.ndarray, opened: np.ndarray, index: np.ndarray, axis: int) -> bool:
    """Whether the long run in rows/columns `index` is 8-connected to ink outside that band."""
    labels, _ = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    band = np.zeros(ink.shape, dtype=bool)
    if axis == 1:
        band[index, :] = True
    else:
        band[:, index] = True
    line_labels = np.unique(labels[(opened > 0) & band])
    line_labels = line_labels[line_labels > 0]
    outside = np.isin(labels, line_labels) & ~band
    return int(outside.sum()) > 0.05 * int((opened > 0).sum())


def _pair_contrast(a: np.ndarray) -> float:
    pairs = [
        np.minimum(a[1:, :], a[:-1, :]),
        np.minimum(a[:, 1:], a[:, :-1]),
        np.minimum(a[1:, 1:], a[:-1, :-1]),
        np.minimum(a[1:, :-1], a[:-1, 1:]),
    ]
    return max((float(p.max()) for p in pairs if p.size), default=0.0)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary mask: 2 × area / boundary length (pixels)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    boundary = int((mask & ~ndimage.binary_erosion(mask)).sum())
    return 2.0 * area / max(boundary, 1)


def _trim(a: np.ndarray) -> np.ndarray:
    """Crop to the bounding box of the non-zero pixels."""
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _centre_by_mass(patch: np.ndarray, canvas: int) -> np.ndarray:
    out = np.zeros((canvas, canvas), dtype=np.float32)
    h, w = patch.shape
    total = float(patch.sum())
    if total <= 0:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    else:  # ndimage.center_of_mass's own sums, without its per-call label bookkeeping
        normaliser = patch.sum()
        cy = float((patch * np.arange(h, dtype=np.float64)[:, None]).sum() / normaliser)
        cx = float((patch * np.arange(w, dtype=np.float64)[None, :]).sum() / normaliser)
    centre = (canvas - 1) / 2
    top = int(np.clip(round(centre - cy), 0, canvas - h))
    left = int(np.clip(round(centre - cx), 0, canvas - w))
    out[top : top + h, left : left + w] = patch
    return out


@dataclass(frozen=True)
class InkMap:
    """Where the ink is, before any cropping: the shared first half of single- and multi-digit reading."""

    level: np.ndarray  # (h, w) float32 in [0, 1], ink = 1, paper, specks' halo and ruled lines = 0
    inverted: bool  # dark ink on light paper was flipped
    contrast: float  # ink-vs-paper contrast in [0, 1]
    scale: float  # working pixels per input pixel (≤ 1)


def ink_map(
    gray: np.ndarray, cfg: PreprocessConfig | None = None, max_side: int | None = None, stats_step: int = 1
) -> InkMap:
    """Steps 1-4 of the module docstring: reduce, polarity, background, noise floor, ruled lines.

    `stats_step` > 1 estimates the paper noise from every n-th row and column (the medians over a
    whole photo are the slowest step; the multi-digit reader, which runs on larger images, uses 2).
    Raises NoInkFound when the contrast is too low to hold any ink.
    """
    cfg = cfg or PreprocessConfig()
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ValueError(f"expected a 2-D grey image, got shape {gray.shape}")
    # Reduce first: clipping and NaN checks then run on the small picture (same result for the
    # [0, 1] images the decoder produces).
    work = np.nan_to_num(np.clip(reduce_to(gray, max_side or cfg.work_side), 0, 1))
    ink, inverted = to_bright_ink(work, stats_step)
    ink = remove_background(ink)

    # Contrast: the brightest ink ignoring isolated hot pixels: the best pair of touching pixels
    # (vertical, horizontal or diagonal), so a 1-px line in any direction still counts.
    contrast = _pair_contrast(ink)
    if contrast < cfg.min_contrast:
        raise NoInkFound("no digit found")

    # Noise floor: well above the paper texture / JPEG noise, well below the ink.
    sample = ink[::stats_step, ::stats_step] if stats_step > 1 else ink
    paper = sample[sample < 0.5 * contrast]
    paper_median = np.median(paper) if paper.size else 0.0
    noise = 1.4826 * float(np.median(np.abs(paper - paper_median))) if paper.size else 0.0
    floor = max(0.2 * contrast, float(paper_median) + 4 * noise if paper.size else 0.0)
    floor = min(floor, 0.6 * contrast)
    level = np.clip((ink - floor) / max(0.85 * contrast - floor, 1e-6), 0, 1)
    level = remove_rules(level)
    return InkMap(
        level=level.astype(np.float32, copy=False),
        inverted=inverted,
        contrast=round(contrast, 4),
        scale=work.shape[1] / gray.shape[1],
    )


def normalise_crop(crop: np.ndarray, cfg: PreprocessConfig | None = None) -> tuple[np.ndarray, float]:
    """Step 5: one digit's ink, cropped to it → (the 28×28 the network sees, stroke width in 20×20).

    Evens out the stroke width (dilate hair-lines, erode very bold strokes) so it lands in MNIST's
    range after scaling, fits the ink into 20×20 and centres it by centre of mass in 28×28.
    """
    cfg = cfg or PreprocessConfig()
    scale = cfg.box / max(crop.shape)
    width = _stroke_width(crop > 0.5)
    scaled_width = width * scale
    lo, hi = cfg.target_stroke
    if 0 < scaled_width < lo:
        grow = math.ceil(lo / scale - width)
        if grow >= 1:
            pad = grow
            crop = np.pad(crop, pad)
            crop = ndimage.grey_dilation(crop, size=(grow + 1, grow + 1))
            crop = _trim(crop)
            scale = cfg.box / max(crop.shape)
    elif scaled_width > hi:
        shrink = math.floor(width - hi / scale)
        if shrink >= 1:
            thinner = ndimage.grey_erosion(crop, size=(shrink + 1, shrink + 1))
            if thinner.max() > 0.5:  # never erase the digit
                crop = _trim(thinner)
                scale = cfg.box / max(crop.shape)

    h, w = crop.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    patch = np.clip(_resize(crop, size), 0, 1)
    strong = patch[patch > 0.05]
    if strong.size:
        patch = np.clip(patch / max(float(np.percentile(strong, 90)), 0.3), 0, 1)
    return _centre_by_mass(patch, cfg.canvas).astype(np.float32), scaled_width


def preprocess_gray(gray: np.ndarray, cfg: PreprocessConfig | None = None) -> Preprocessed:
    """(H, W) float array in [0, 1] (any polarity) → the 28×28 the network sees.

    Raises NoInkFound for blank or near-blank images.
    """
    cfg = cfg or PreprocessConfig()
    ink = ink_map(gray, cfg)
    level = ink.level

    # Keep the digit, drop specks: components with under 8% of the largest one's ink mass.
    labels, count = ndimage.label(level > 0, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        raise NoInkFound("no digit found")
    mass = ndimage.sum_labels(level, labels, index=np.arange(1, count + 1))
    keep_ids = np.flatnonzero(mass >= 0.08 * mass.max()) + 1
    keep = np.isin(labels, keep_ids)
    level = np.where(keep, level, 0).astype(np.float32)
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if max(bottom - top, right - left) < cfg.min_ink_side:
        raise NoInkFound("no digit found (only a few stray marks)")

    image, scaled_width = normalise_crop(level[top:bottom, left:right], cfg)
    return Preprocessed(
        image=image,
        inverted=ink.inverted,
        contrast=ink.contrast,
        bbox=(int(left), int(top), int(right), int(bottom)),
        work_size=(int(level.shape[1]), int(level.shape[0])),
        stroke_px=round(scaled_width, 2),
        scale=ink.scale,
    )
