"""Find the digits of a written or printed number and cut each into an MNIST-like 28×28.

The CNN reads one digit; a house number, a meter reading or a phone number holds several. After the
same polarity, background and noise steps as single digits (`preprocess.ink_map`), in order:

1. connected components of the ink (8-connected);
2. slant of the line: Theil–Sen fit through the mid-heights of narrow column slabs of the large
   components; beyond ±`min_deskew_deg` (and up to ±`max_deskew_deg`) the ink is rotated level;
3. broken strokes are merged: components that share most of their horizontal extent, where one is
   clearly shorter than the other, one sits above the other, or they overlap almost entirely (the
   detached top of a 5, a pen lifted inside a 4, a stroke cut by a ruled line or the noise floor);
4. specks, dots and lines are dropped: groups much shorter than the number's typical digit height
   (a full stop, a minus sign, an underline) or with a tiny share of the ink;
5. touching digits are split: a group much wider than a digit is cut into round(width / digit
   width) pieces at the emptiest column (vertical projection) near each expected cut;
6. reading order is left to right; each group's ink alone (its neighbours masked out) goes through
   `preprocess.normalise_crop`.

Pure numpy / scipy: no torch, no I/O. Boxes come back in the input image's pixel coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from models.vision import PreprocessConfig
from models.vision.preprocess import NoInkFound, ink_map, normalise_crop

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class SegmentConfig:
    """Thresholds of the multi-digit reader; heights are relative to the number's typical digit height."""

    work_side: int = 640  # longest side for segmentation: 12 digits still get ~40 px each
    max_digits: int = 12
    min_deskew_deg: float = 2.5  # below this the slant is left alone (rotation blurs thin strokes)
    max_deskew_deg: float = 15.0  # beyond this the estimate is more likely wrong than the page tilted
    merge_overlap: float = 0.5  # shared horizontal extent, as a share of the narrower part, to merge
    merge_full_overlap: float = 0.8  # ... at which even two full-height parts merge
    short_part: float = 0.7  # a part shorter than this × its partner's height counts as a fragment
    stacked_overlap: float = 0.25  # parts sharing less of their height than this are stacked ...
    stacked_merge_overlap: float = 0.3  # ... and merge when they share this much of their width
    min_height: float = 0.4  # groups shorter than this × the digit height are specks, dots or lines
    min_mass: float = 0.03  # groups with less than this share of the heaviest group's ink are dropped
    split_aspect: float = 1.15  # a group wider than this × the digit height holds more than one digit
    split_width: float = 1.6  # ... or wider than this × the typical digit width
    cut_window: float = 0.3  # search each cut within ± this × the expected digit width


@dataclass(frozen=True)
class DigitCut:
    image: np.ndarray  # (28, 28) float32, ink = 1: what the network sees for this digit
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in input pixels


@dataclass(frozen=True)
class Segmentation:
    digits: list[DigitCut]
    inverted: bool
    contrast: float
    angle_deg: float  # the slant that was corrected (0 when none)
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _Group:
    mask: np.ndarray  # bool, full working-image size
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int
    mass: float

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def _components(level: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice]], np.ndarray]:
    labels, count = ndimage.label(level > 0, structure=EIGHT_CONNECTED)
    if count == 0:
        raise NoInkFound("no digit found")
    slices = ndimage.find_objects(labels)
    mass = np.asarray(ndimage.sum_labels(level, labels, index=np.arange(1, count + 1)), dtype=np.float64)
    return labels, slices, mass


def estimate_slant(level: np.ndarray, cfg: SegmentConfig = SegmentConfig()) -> float:
    """Angle (degrees, image y downwards) of the line the digits sit on; 0 when it cannot be told."""
    labels, slices, mass = _components(level)
    heights = np.array([s[0].stop - s[0].start for s in slices])
    big = [
        i for i in range(len(slices)) if mass[i] >= 0.05 * mass.max() and heights[i] >= 0.5 * heights.max()
    ]
    span = max(slices[i][1].stop for i in big) - min(slices[i][1].start for i in big)
    typical = float(np.median(heights[big]))
    if span < 1.5 * typical:  # one digit (or a narrow pair): no line to speak of
        return 0.0
    slab = max(2, int(typical / 2))
    xs, ys = [], []
    for i in big:
        rows, cols = slices[i]
        own = labels[rows, cols] == i + 1
        for start in range(0, own.shape[1], slab):
            part = own[:, start : start + slab]
            filled = np.flatnonzero(part.any(1))
            if filled.size == 0:
                continue
            xs.append(cols.start + start + part.shape[1] / 2)
            ys.append(rows.start + (filled[0] + filled[-1] + 1) / 2)
    if len(xs) < 3:
        return 0.0
    x, y = np.asarray(xs), np.asarray(ys)
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    far = np.triu(np.abs(dx) >= typical)  # pairs at least a digit apart: short baselines are noisy
    if far.sum() < 3:
        return 0.0
    slope = float(np.median(dy[far] / dx[far]))  # Theil–Sen: robust to the odd 7 or 4
    return math.degrees(math.atan(slope))


def _rotate(level: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by -angle about the centre (expanding the canvas); also return the 2×3 map back."""
    h, w = level.shape
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    out_h = int(math.ceil(abs(h * c) + abs(w * s)))
    out_w = int(math.ceil(abs(w * c) + abs(h * s)))
    # Output pixel (ox, oy) comes from input (ix, iy): rotate about the centres by +angle.
    centre_in = np.array([(w - 1) / 2, (h - 1) / 2])
    centre_out = np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    back = np.array([[c, -s], [s, c]])  # (x, y) out → in, relative to the centres
    offset_xy = centre_in - back @ centre_out
    # ndimage works in (row, col): swap the axes of the matrix and the offset.
    matrix_rc = np.array([[back[1, 1], back[1, 0]], [back[0, 1], back[0, 0]]])
    rotated = ndimage.affine_transform(
        level, matrix_rc, offset=(offset_xy[1], offset_xy[0]), output_shape=(out_h, out_w), order=1
    )
    return np.clip(rotated, 0, 1).astype(np.float32), np.hstack([back, offset_xy[:, None]])


def _group(level: np.ndarray, cfg: SegmentConfig) -> list[_Group]:
    labels, slices, mass = _components(level)
    n = len(slices)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxes = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices]
    tall = max(b[3] - b[1] for b in boxes)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = boxes[i], boxes[j]
            overlap = min(a[2], b[2]) - max(a[0], b[0])
            if overlap <= 0:
                continue
            narrower = min(a[2] - a[0], b[2] - b[0])
            ha, hb = a[3] - a[1], b[3] - b[1]
            gap = max(a[1], b[1]) - min(a[3], b[3])  # vertical distance between them (< 0: overlap)
            if gap > 0.5 * tall:
                continue  # far above or below: another line of writing, not a broken stroke
            fragment = min(ha, hb) < cfg.short_part * max(ha, hb)
            stacked = -gap <= cfg.stacked_overlap * min(ha, hb)  # one above the other, not side by side
            if (
                overlap >= cfg.merge_full_overlap * narrower
                or (overlap >= cfg.merge_overlap * narrower and fragment)
                or (overlap >= cfg.stacked_merge_overlap * narrower and stacked)
            ):
                parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    groups = []
    for ids in members.values():
        mask = np.isin(labels, np.asarray(ids) + 1)
        x0 = min(boxes[i][0] for i in ids)
        y0 = min(boxes[i][1] for i in ids)
        x1 = max(boxes[i][2] for i in ids)
        y1 = max(boxes[i][3] for i in ids)
        groups.append(_Group(mask, x0, y0, x1, y1, float(mass[ids].sum())))
    return groups


def _shrink(level: np.ndarray, mask: np.ndarray) -> _Group | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return _Group(
        mask, int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1, float(level[mask].sum())
    )


def _split(level: np.ndarray, group: _Group, pieces: int, cfg: SegmentConfig) -> list[_Group]:
    """Cut a group of touching digits at the emptiest columns near the evenly spaced positions."""
    ink = np.where(group.mask, level, 0)[group.y0 : group.y1, group.x0 : group.x1]
    profile = ndimage.uniform_filter1d(ink.sum(0), size=3, mode="nearest")
    step = group.width / pieces
    cuts = [0]
    for k in range(1, pieces):
        centre = k * step
        lo = max(cuts[-1] + 1, int(centre - cfg.cut_window * step))
        hi = min(group.width - 1, int(centre + cfg.cut_window * step) + 1)
        cuts.append(lo + int(np.argmin(profile[lo:hi])) if hi > lo else int(centre))
    cuts.append(group.width)
    out = []
    for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
        piece = np.zeros_like(group.mask)
        piece[:, group.x0 + start : group.x0 + stop] = group.mask[:, group.x0 + start : group.x0 + stop]
        # A cut can leave a sliver of the neighbour's stroke: keep the piece's main parts only.
        labels, count = ndimage.label(piece, structure=EIGHT_CONNECTED)
        if count > 1:
            mass = ndimage.sum_labels(level, labels, index=np.arange(1, count + 1))
            piece = np.isin(labels, np.flatnonzero(mass >= 0.15 * mass.max()) + 1)
        shrunk = _shrink(level, piece)
        if shrunk is not None:
            out.append(shrunk)
    return out


def _digit_groups(level: np.ndarray, cfg: SegmentConfig) -> list[_Group]:
    groups = _group(level, cfg)
    heaviest = max(g.mass for g in groups)
    groups = [g for g in groups if g.mass >= cfg.min_mass * heaviest]
    tallest = max(g.height for g in groups)
    typical_h = float(np.median([g.height for g in groups if g.height >= 0.5 * tallest]))
    groups = [g for g in groups if g.height >= cfg.min_height * typical_h]
    # A digit's width, from the groups that are neither a "1" nor several digits side by side.
    widths = [g.width for g in groups if 0.4 * typical_h <= g.width <= 1.0 * typical_h]
    typical_w = float(
        np.clip(np.median(widths) if widths else 0.65 * typical_h, 0.45 * typical_h, 0.9 * typical_h)
    )
    out: list[_Group] = []
    for g in groups:
        if g.width > cfg.split_aspect * max(g.height, typical_h) or g.width > cfg.split_width * max(
            typical_w, 0.75 * g.height
        ):
            pieces = max(2, round(g.width / typical_w))
            out.extend(_split(level, g, pieces, cfg))
        else:
            out.append(g)
    return sorted(out, key=lambda g: (g.x0 + g.x1) / 2)


def segment_digits(
    gray: np.ndarray, cfg: PreprocessConfig | None = None, seg: SegmentConfig = SegmentConfig()
) -> Segmentation:
    """(H, W) grey image in [0, 1], any polarity → the digits in reading order, each as a 28×28.

    Raises NoInkFound when nothing digit-like is there.
    """
    cfg = cfg or PreprocessConfig()
    ink = ink_map(gray, cfg, max_side=seg.work_side)
    level = ink.level
    notes: list[str] = []
    angle = estimate_slant(level, seg)
    back = None
    if seg.min_deskew_deg <= abs(angle) <= seg.max_deskew_deg:
        level, back = _rotate(level, angle)
        notes.append(f"the number was tilted by {angle:+.0f}° and was straightened")
    else:
        angle = 0.0
    groups = _digit_groups(level, seg)
    if not groups:
        raise NoInkFound("no digit found")
    if len(groups) > seg.max_digits:
        notes.append(f"found {len(groups)} marks; only the {seg.max_digits} largest were read as digits")
        keep = sorted(sorted(groups, key=lambda g: -g.mass)[: seg.max_digits], key=lambda g: g.x0)
        groups = keep
    digits = []
    for g in groups:
        if max(g.width, g.height) < cfg.min_ink_side:
            continue
        crop = np.where(g.mask, level, 0)[g.y0 : g.y1, g.x0 : g.x1].astype(np.float32)
        image, _ = normalise_crop(crop, cfg)
        digits.append(DigitCut(image=image, box=_box_in_input(g, back, ink.scale, gray.shape)))
    if not digits:
        raise NoInkFound("no digit found (only a few stray marks)")
    return Segmentation(digits, ink.inverted, ink.contrast, round(angle, 2), tuple(notes))


def _box_in_input(
    g: _Group, back: np.ndarray | None, scale: float, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    corners = np.array([[g.x0, g.y0], [g.x1, g.y0], [g.x0, g.y1], [g.x1, g.y1]], dtype=np.float64)
    if back is not None:
        corners = corners @ back[:, :2].T + back[:, 2]
    corners /= scale
    h, w = shape[:2]
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    return (max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)))
