"""Find the digits of a written or printed number and cut each into an MNIST-like 28×28.

The CNN reads one digit; a house number, a meter reading or a phone number holds several. After the
same polarity, background and noise steps as single digits (`preprocess.ink_map`), in order:

1. connected components of the ink (8-connected);
2. slant of the line: Theil–Sen fit through the mid-heights of narrow column slabs of the large
   components; beyond ±`min_deskew_deg` (and up to ±`max_deskew_deg`) the ink is rotated level;
3. faint patches (a shadow or a fold that crosses the ink threshold) and specks (components with a
   negligible share of the ink) are dropped first; then broken strokes are merged: components that
   share most of their horizontal extent, where one is clearly shorter than the other, one sits
   above the other, or they overlap almost entirely (the detached top of a 5, a pen lifted inside a
   4, a stroke cut by a ruled line or by the noise floor);
4. parts too short to be a digit join the nearest digit when they touch its box (the tail of a 2),
   and are dropped otherwise (dots, a minus sign, an underline);
5. touching digits are split: for a group wider than a digit, candidate cuts (the emptiest columns
   of the vertical projection near evenly spaced positions, and its other deep valleys; when none of
   those reads surely, the best-read sequence of cuts through any of its deepest valleys, for each
   piece count) are scored by the CNN itself, which reads the pieces of every candidate in one
   batch; the best-read candidate wins, with a price per extra piece so a wide 0 is not cut in two.
   A group that could be one digit is cut only when every full-height piece reads with next to no
   doubt and the whole leaves some, or when the counting network (`count.py`) takes it for several
   digits and finds pieces that are one digit each. Without the CNN the evenly spaced cut for the
   typical digit width is taken. A piece of the chosen cut that the counting network still takes for
   several digits (a "1" touching a 6 inside "816") is cut again the same way;
5b. neighbours that are two halves of one digit for the counting network are joined again;
6. reading order is left to right; each group's ink alone (its neighbours masked out) goes through
   `preprocess.normalise_crop`.

Pure numpy / scipy: no torch, no I/O. Boxes come back in the input image's pixel coordinates, and
each digit the CNN already read on the way (most of them) carries that reading, so the service
needs no second pass for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from models.vision import PreprocessConfig
from models.vision.count import ONE, PART, SEVERAL
from models.vision.preprocess import NoInkFound, ink_map, normalise_crop

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
Scorer = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) → (N, 10) class probabilities


@dataclass(frozen=True)
class SegmentConfig:
    """Thresholds of the multi-digit reader; heights are relative to the number's typical digit height."""

    work_side: int = 360  # longest side for segmentation: 12 digits in a row still get ~30 px each (speed)
    stats_step: int = 2  # paper-noise statistics from every 2nd row and column (speed)
    max_digits: int = 12
    min_deskew_deg: float = 2.5  # below this the slant is left alone (rotation blurs thin strokes)
    max_deskew_deg: float = 15.0  # beyond this the estimate is more likely wrong than the page tilted
    merge_overlap: float = 0.5  # shared horizontal extent, as a share of the narrower part, to merge
    merge_full_overlap: float = 0.8  # ... at which even two full-height parts merge
    short_part: float = 0.7  # a part shorter than this × its partner's height counts as a fragment
    stacked_overlap: float = 0.25  # parts sharing less of their height than this are stacked ...
    stacked_merge_overlap: float = 0.3  # ... and merge when they share this much of their width
    min_mass: float = 0.03  # groups with less than this share of the heaviest group's ink are dropped
    rule_span: float = 0.85  # a thin part this long (× the picture's side) is a margin or ruled line
    rule_thickness: float = 0.08  # ... when it is this thin relative to its length
    margin_cover: float = 0.7  # a column band inked over this share of the height may be a margin line
    speck_mass: float = 0.015  # components with less than this share of the heaviest one's ink are noise
    faint_ink: float = 0.25  # components whose mean ink is under this × the darkest one's are shadows
    fragment_height: float = 0.55  # shorter than this × the digit height: part of a digit, not one
    fragment_reach: float = 0.3  # ... joined to the nearest digit within this × the digit height
    split_aspect: float = 1.3  # a group wider than this × the digit height holds more than one digit
    maybe_split_aspect: float = 0.8  # ... and from this width on, the classifier is asked:
    # A group that is not far too wide for one digit is cut only when the CNN doubts the whole and
    # reads every full-height piece with next to no doubt: it also reads halves of a 3 or a 5, or a
    # 0 without its right side, with high confidence, but then the whole reads as surely or the
    # pieces less surely. Chosen on numbers composed from MNIST train digits (the oracle decision
    # per group: at these values no cut was wrongly taken there and 16 of 23 missed ones were).
    unsure_whole: float = 0.999  # cut a group the CNN reads as one digit below this confidence ...
    unsure_whole_if_wider: float = 0.9999  # ... (this, if it is wider than `wide_piece` × its peers)
    cut_piece_confidence: float = 0.996  # ... when every piece reads at least this well
    cut_piece_height: float = 0.8  # ... and is at least this × the group's height
    sure_pieces: float = 0.97  # parts that each read this well are no one digit (`separate_height`)
    split_log_price: float = -0.35  # log-score price of each extra piece (cut only when clearly better)
    wide_piece: float = 1.6  # pieces wider than this × the typical digit width ...
    wide_log_price: float = -3.0  # ... pay this log-score per typical width beyond it
    single_aspect: float = 1.0  # parts spanning no more than this × their height may be one digit ...
    # ... unless every part is at least this × their joint height and reads at `sure_pieces`: then
    # they are digits side by side (a "1" beside a 2 spans less than a digit's height, and the CNN
    # still reads the squeezed pair as a 2). A broken digit has a shorter part (the top of a 5, the
    # bar of a 7). Chosen on numbers and single digits composed from MNIST train digits: 0.7-0.8
    # gave the same decisions there, 0.85 already kept pairs like "11" together.
    separate_height: float = 0.75
    # The counting network (models/vision/count.py: one digit, several, part of one) is asked about
    # groups from this width (× the digit height) on; the CNN reads "41" or "66" squeezed into one
    # 28×28 as one sure digit, the counting network sees two. Chosen on numbers composed from MNIST
    # train digits (models.vision.number_images --split train), never on the test digits.
    count_aspect: float = 0.55
    several_whole: float = 0.5  # a group is tried for cuts when P(several digits) reaches this ...
    # ... and cut when no piece is P(part of a digit) above this (a thin "1" cut off a "4" may look
    # like the stroke of a cut-through digit: only a clear "part" vetoes) ...
    several_piece_part: float = 0.9
    # ... unless the group is not wide (`split_aspect`) and the counting network is this sure it holds
    # several: a "1" cut off a 4 or a 0 is a bare stroke, which it also takes for part of a digit.
    # Chosen on numbers composed from MNIST train digits (0.95: the pairs it cut there held 1.00 or
    # 0.97; single digits it wrongly cut without the veto, 0.68-0.90).
    sure_several: float = 0.95
    several_piece_confidence: float = 0.9  # ... and the CNN reads every piece at least this well
    # A group the counting network is this sure is one digit is never cut, however wide (a 5 with a
    # long bar, a sprawling 2). Chosen on numbers composed from MNIST train digits: there it turned
    # no number wrong and three right.
    sure_one: float = 0.99
    # Neighbours at most `part_merge_gap` × the digit height apart are one digit cut in two (a
    # narrow 0 as "17") when either is surely part of a digit and together they are one digit.
    part_merge_gap: float = 0.1
    part_merge_part: float = 0.5
    part_merge_one: float = 0.8
    part_merge_confidence: float = 0.9
    both_parts: float = 0.9  # ... or when both are surely parts and the CNN reads the union
    both_parts_confidence: float = 0.99  # ... this well
    cut_window: float = 0.3  # search each cut within ± this × the expected digit width
    max_valleys: int = 8  # deepest projection valleys tried as the ends of pieces (CNN-read, in one batch)
    valley_spacing: float = 0.15  # ... at least this × the typical digit width apart
    split_rounds: int = 2  # pieces the counting network still takes for several digits are cut again


@dataclass(frozen=True)
class DigitCut:
    image: np.ndarray  # (28, 28) float32, ink = 1: what the network sees for this digit
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in input pixels
    probs: np.ndarray | None = None  # (10,) the scorer's reading of `image`, when segmentation asked it


@dataclass(frozen=True)
class Segmentation:
    digits: list[DigitCut]
    inverted: bool
    contrast: float
    angle_deg: float  # the slant that was corrected (0 when none)
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(eq=False)  # compared and hashed by identity: _Reader keeps a group's crop and reading
class _Group:
    mask: np.ndarray  # bool, (y1 - y0, x1 - x0): the group's own ink inside its box
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


class _Reader:
    """The level ink, each group's 28×28 cut from it, and the classifier's readings, each made once.

    Segmentation asks the classifier about candidate digits, and most of them are the final digits:
    keeping their crops and readings spares cutting them again and a second forward pass for the
    answer (the service takes `DigitCut.probs`).
    """

    def __init__(
        self, level: np.ndarray, pre: PreprocessConfig, scorer: Scorer | None, counter: Scorer | None = None
    ):
        self.level = level
        self.pre = pre
        self.scorer = scorer
        self.counter = counter
        self._crops: dict[_Group, np.ndarray] = {}
        self._probs: dict[_Group, np.ndarray] = {}
        self._counts: dict[_Group, np.ndarray] = {}

    def crop(self, g: _Group) -> np.ndarray:
        if g not in self._crops:
            ink = np.where(g.mask, self.level[g.y0 : g.y1, g.x0 : g.x1], 0).astype(np.float32)
            self._crops[g] = normalise_crop(ink, self.pre)[0]
        return self._crops[g]

    def _scored(
        self, cache: dict[_Group, np.ndarray], network: Scorer, groups: Sequence[_Group]
    ) -> np.ndarray:
        """Each group's row from `network`: the groups not scored yet go through it in one batch."""
        new = list({g: None for g in groups if g not in cache})  # unique, in order
        if new:
            for g, row in zip(new, network(np.stack([self.crop(g) for g in new])), strict=True):
                cache[g] = row
        return np.stack([cache[g] for g in groups])

    def probs(self, groups: Sequence[_Group]) -> np.ndarray:
        """(N, 10) class probabilities from the digit CNN."""
        return self._scored(self._probs, self.scorer, groups)

    def counts(self, groups: Sequence[_Group]) -> np.ndarray:
        """(N, 3) P(one digit, several digits, part of one) from the counting network."""
        return self._scored(self._counts, self.counter, groups)

    def confidence(self, groups: Sequence[_Group]) -> np.ndarray:
        """(N,) top class probability, clipped for logs; float32 as the thresholds were tuned on."""
        return np.clip(self.probs(groups).max(1).astype(np.float32), 1e-6, 1.0)

    def known_probs(self, g: _Group) -> np.ndarray | None:
        return self._probs.get(g)


def _components(level: np.ndarray) -> tuple[np.ndarray, list[tuple[slice, slice]], np.ndarray]:
    labels, count = ndimage.label(level > 0, structure=EIGHT_CONNECTED)
    if count == 0:
        raise NoInkFound("no digit found")
    slices = ndimage.find_objects(labels)
    # The ink of each component: bincount is what ndimage.sum_labels runs, here without its
    # relabelling and over the inked pixels only (a few percent of the picture), in the same order.
    inked = np.flatnonzero(labels)
    mass = np.bincount(labels.ravel()[inked], weights=level.ravel()[inked], minlength=count + 1)[1:]
    return labels, slices, mass


def estimate_slant(
    level: np.ndarray, cfg: SegmentConfig = SegmentConfig(), components: tuple | None = None
) -> float:
    """Angle (degrees, image y downwards) of the line the digits sit on; 0 when it cannot be told.

    `components` may pass `_components(level)` (specks included: only large components count; a
    component weighing nothing, such as a shadow `_drop_specks` removed, does not count at all).
    """
    labels, slices, mass = components if components is not None else _components(level)
    heights = np.array([s[0].stop - s[0].start for s in slices])
    heavy = mass >= 0.05 * mass.max()
    big = [i for i in np.flatnonzero(heavy) if heights[i] >= 0.5 * heights[heavy].max()]
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
    """Turn the ink so a line sloping by `angle_deg` (y down) becomes level; canvas expanded.

    Also returns the 2×3 map from output (x, y) back to input pixels, for the boxes. Pillow turns
    counter-clockwise about the centres (w/2, h/2) of both frames.
    """
    h, w = level.shape
    turned = Image.fromarray(np.ascontiguousarray(level, dtype=np.float32), mode="F").rotate(
        angle_deg, resample=Image.Resampling.BILINEAR, expand=True
    )
    rotated = np.asarray(turned, dtype=np.float32)
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    back = np.array([[c, -s], [s, c]])  # output direction (1, 0) → input (cos, sin): the sloping line
    centre_in = np.array([w / 2, h / 2])
    centre_out = np.array([rotated.shape[1] / 2, rotated.shape[0] / 2])
    offset = centre_in - back @ centre_out
    return np.clip(rotated, 0, 1), np.hstack([back, offset[:, None]])


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
        x0 = min(boxes[i][0] for i in ids)
        y0 = min(boxes[i][1] for i in ids)
        x1 = max(boxes[i][2] for i in ids)
        y1 = max(boxes[i][3] for i in ids)
        mask = np.isin(labels[y0:y1, x0:x1], np.asarray(ids) + 1)
        groups.append(_Group(mask, x0, y0, x1, y1, float(mass[ids].sum())))
    return groups


def _make(level: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> _Group | None:
    """A group from a mask whose top-left corner sits at (x0, y0), trimmed to its ink."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    local = mask[top:bottom, left:right]
    box = (x0 + left, y0 + top, x0 + right, y0 + bottom)
    mass = float(level[box[1] : box[3], box[0] : box[2]][local].sum())
    return _Group(local, *box, mass)


def _union(level: np.ndarray, groups: Sequence[_Group]) -> _Group | None:
    x0, y0 = min(g.x0 for g in groups), min(g.y0 for g in groups)
    x1, y1 = max(g.x1 for g in groups), max(g.y1 for g in groups)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for g in groups:
        mask[g.y0 - y0 : g.y1 - y0, g.x0 - x0 : g.x1 - x0] |= g.mask
    return _make(level, mask, x0, y0)


def _piece(level: np.ndarray, group: _Group, start: int, stop: int) -> _Group | None:
    """The group's ink between two columns (relative to its left edge); None for a stub of a line."""
    piece = np.zeros_like(group.mask)
    piece[:, start:stop] = group.mask[:, start:stop]
    # A cut can leave a sliver of the neighbour's stroke: keep the piece's main parts only.
    labels, count = ndimage.label(piece, structure=EIGHT_CONNECTED)
    if count > 1:
        local_level = level[group.y0 : group.y1, group.x0 : group.x1]
        mass = ndimage.sum_labels(local_level, labels, index=np.arange(1, count + 1))
        piece = np.isin(labels, np.flatnonzero(mass >= 0.15 * mass.max()) + 1)
    shrunk = _make(level, piece, group.x0, group.y0)
    return shrunk if shrunk is not None and shrunk.height >= 0.5 * group.height else None


def _split(level: np.ndarray, group: _Group, cuts: Sequence[int]) -> list[_Group]:
    """Cut a group at the given columns (relative to its left edge) into pieces, left to right."""
    bounds = [0, *cuts, group.width]
    pieces = (_piece(level, group, start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True))
    return [piece for piece in pieces if piece is not None]


def _by_components(level: np.ndarray, group: _Group) -> list[_Group]:
    """The group's separate strokes as pieces (left to right), when two or more carry real ink:
    digits whose boxes overlap (one 5's bar over the next) cannot be parted by a vertical cut."""
    labels, count = ndimage.label(group.mask, structure=EIGHT_CONNECTED)
    if count < 2:
        return []
    local = level[group.y0 : group.y1, group.x0 : group.x1]
    mass = ndimage.sum_labels(local, labels, index=np.arange(1, count + 1))
    big = [i + 1 for i in np.flatnonzero(mass >= 0.15 * mass.sum())]
    if len(big) < 2:
        return []
    # Each small stroke joins the big one whose centre is nearest to its own.
    centres = ndimage.center_of_mass(local, labels, index=np.arange(1, count + 1))
    owner = {b: b for b in big}
    for i in range(1, count + 1):
        if i not in owner:
            owner[i] = min(big, key=lambda b: math.dist(centres[i - 1], centres[b - 1]))
    pieces = [
        _make(level, np.isin(labels, [i for i, o in owner.items() if o == b]), group.x0, group.y0)
        for b in big
    ]
    return sorted((p for p in pieces if p is not None), key=lambda p: (p.x0 + p.x1) / 2)


def _projection(level: np.ndarray, group: _Group) -> np.ndarray:
    """The group's ink summed down each column, lightly smoothed: low where digits meet."""
    ink = np.where(group.mask, level[group.y0 : group.y1, group.x0 : group.x1], 0)
    return ndimage.uniform_filter1d(ink.sum(0), size=3, mode="nearest")


def _valley_splits(
    level: np.ndarray, group: _Group, typical_w: float, reader: _Reader, cfg: SegmentConfig
) -> list[list[_Group]]:
    """For each number of pieces, the cuts through valleys of the projection whose pieces the CNN
    reads best, found by dynamic programming over the deepest valleys.

    Evenly spaced cuts miss the joints beside a narrow 1 ("011" is not three equal thirds); here
    any valley may end a piece, so the pieces keep their own widths.
    """
    profile = _projection(level, group)
    width = group.width
    inner = np.arange(2, width - 2)
    if inner.size == 0:
        return []
    minima = inner[(profile[inner] <= profile[inner - 1]) & (profile[inner] <= profile[inner + 1])]
    spacing = max(2.0, cfg.valley_spacing * typical_w)
    valleys: list[int] = []
    for column in minima[np.argsort(profile[minima], kind="stable")]:
        if all(abs(int(column) - v) >= spacing for v in valleys):
            valleys.append(int(column))
        if len(valleys) == cfg.max_valleys:
            break
    bounds = [0, *sorted(valleys), width]
    widest = cfg.wide_piece * typical_w
    spans = {
        (i, j): piece
        for i in range(len(bounds) - 1)
        for j in range(i + 1, len(bounds))
        if bounds[j] - bounds[i] <= widest or (i, j) == (0, len(bounds) - 1)
        for piece in [_piece(level, group, bounds[i], bounds[j])]
        if piece is not None
    }
    spans.pop((0, len(bounds) - 1), None)  # the whole group is not a split
    if not spans:
        return []
    log_conf = dict(zip(spans, np.log(reader.confidence(list(spans.values()))), strict=True))
    # best[n][j]: (score, pieces) of the best way to cover columns up to bounds[j] with n pieces.
    best: list[dict[int, tuple[float, list[_Group]]]] = [{0: (0.0, [])}]
    for _ in range(min(cfg.max_digits, len(bounds) - 1)):
        step: dict[int, tuple[float, list[_Group]]] = {}
        for (i, j), piece in spans.items():
            if i in best[-1]:
                score = best[-1][i][0] + float(log_conf[(i, j)])
                if j not in step or score > step[j][0]:
                    step[j] = (score, [*best[-1][i][1], piece])
        if not step:
            break
        best.append(step)
    end = len(bounds) - 1
    return [layer[end][1] for layer in best[2:] if end in layer]


def _cut_options(level: np.ndarray, group: _Group, typical_w: float, cfg: SegmentConfig) -> list[list[int]]:
    """Candidate cut sets: for each plausible number of pieces, the emptiest columns near the even
    positions; for two pieces also the other deep valleys of the vertical projection."""
    profile = _projection(level, group)
    width = group.width
    estimate = width / typical_w
    options: list[list[int]] = []
    for pieces in range(2, min(cfg.max_digits, max(2, round(estimate) + 1)) + 1):
        step = width / pieces
        cuts = []
        for k in range(1, pieces):
            lo = max((cuts[-1] if cuts else 0) + 2, int(k * step - cfg.cut_window * step))
            hi = min(width - 2, int(k * step + cfg.cut_window * step) + 1)
            if hi <= lo:
                break
            cuts.append(lo + int(np.argmin(profile[lo:hi])))
        if len(cuts) == pieces - 1:
            options.append(cuts)
    lo, hi = int(0.25 * width), int(0.75 * width)
    if hi - lo > 3:
        valleys = lo + np.argsort(profile[lo:hi])
        for column in valleys[:12]:
            if all(abs(int(column) - c[0]) > 0.08 * width for c in options if len(c) == 1):
                options.append([int(column)])
            if sum(len(c) == 1 for c in options) >= 4:
                break
    return options


def _digit_groups(level: np.ndarray, cfg: SegmentConfig, reader: _Reader) -> list[_Group]:
    scorer = reader.scorer
    groups = _group(level, cfg)
    # A margin or a ruled line that runs across the whole picture is paper, not a 1 or a 7's bar.
    h, w = level.shape
    groups = [
        g
        for g in groups
        if not (g.height >= cfg.rule_span * h and g.width <= cfg.rule_thickness * g.height)
        and not (g.width >= cfg.rule_span * w and g.height <= cfg.rule_thickness * g.width)
    ] or groups
    heaviest = max(g.mass for g in groups)
    groups = [g for g in groups if g.mass >= cfg.min_mass * heaviest]
    typical_h = float(np.median([g.height for g in groups if g.mass >= 0.15 * heaviest]))
    groups = _absorb_fragments(level, groups, typical_h, cfg)
    # A digit's width, from the groups that are neither a "1" nor several digits side by side.
    widths = [g.width for g in groups if 0.4 * typical_h <= g.width <= 1.0 * typical_h]
    typical_w = float(
        np.clip(np.median(widths) if widths else 0.65 * typical_h, 0.45 * typical_h, 0.9 * typical_h)
    )
    out: list[_Group] = []
    counter = reader.counter if scorer is not None else None
    candidates: list[tuple[_Group, bool, float | None, bool]] = []  # group, wide, peer width, several
    unsure: list[tuple[_Group, float | None, bool]] = []  # group, peer width, wide enough to doubt
    for g in groups:
        side = max(g.height, typical_h)
        wide = g.width > cfg.split_aspect * side
        maybe = scorer is not None and g.width >= cfg.maybe_split_aspect * side
        countable = counter is not None and g.width >= cfg.count_aspect * side
        if not (wide or maybe or countable):
            out.append(g)
            continue
        peers = [p.width for p in groups if p is not g and 0.4 * typical_h <= p.width <= 1.0 * typical_h]
        peer_w = float(np.median(peers)) if len(peers) >= 2 else None
        if wide or scorer is None:
            candidates.append((g, wide, peer_w, False))
        else:
            unsure.append((g, peer_w, maybe))
    if counter is not None and (candidates or unsure):  # the counting network's view of both, one batch
        reader.counts([g for g, *_ in candidates] + [g for g, _, _ in unsure])
        candidates = [
            (g, wide, peer_w, float(reader.counts([g])[0, SEVERAL]) >= cfg.several_whole)
            for g, wide, peer_w, _ in candidates
        ]
    if unsure:  # worth cutting only if the CNN is unsure of the whole: ask it first, in one batch
        # The plain digits found so far ride along in the same batch: the answer needs their reading.
        reader.probs([g for g, _, _ in unsure] + out)
        whole = reader.confidence([g for g, _, _ in unsure])
        several = (
            reader.counts([g for g, _, _ in unsure])[:, SEVERAL]
            if counter is not None
            else np.zeros(len(unsure))
        )
        for (g, peer_w, maybe), confidence, p_several in zip(unsure, whole, several, strict=True):
            wider_than_peers = peer_w is not None and g.width > cfg.wide_piece * peer_w
            if p_several >= cfg.several_whole:
                candidates.append((g, False, peer_w, True))
            elif wider_than_peers or (maybe and confidence < cfg.unsure_whole):
                candidates.append((g, False, peer_w, False))
            else:
                out.append(g)
    for _ in range(cfg.split_rounds):
        ambiguous: list[tuple[_Group, bool, float | None, bool, list[list[_Group]]]] = []
        for g, wide, peer_w, several in candidates:
            options = [_split(level, g, cuts) for cuts in _cut_options(level, g, typical_w, cfg)]
            options = [o for o in options if len(o) > 1]
            # Only when no evenly spaced cut gives pieces that all read surely: the valley search
            # also finds cuts that shave a 1-like sliver off a round digit (a printed "40" as "41").
            if scorer is not None and not any(
                reader.confidence(o).min() >= cfg.cut_piece_confidence for o in options
            ):
                options += [o for o in _valley_splits(level, g, typical_w, reader, cfg) if len(o) > 1]
            if several and len(strokes := _by_components(level, g)) > 1:
                options.append(strokes)
            if not options:
                out.append(g)
            elif scorer is None:  # no classifier to ask: the evenly spaced cut by the digit width
                out.extend(min(options, key=lambda o: abs(len(o) - g.width / typical_w)))
            else:
                ambiguous.append((g, wide, peer_w, several, options))
        if not ambiguous:
            break
        chosen = _choose_splits(ambiguous, reader, cfg, typical_w)
        # A piece of a cut that the counting network still takes for several digits ("816" cut
        # as "8" and "16", the CNN sure of a 6) is cut again in the next round.
        judged = {g for g, *_ in ambiguous}
        peer_of = {g: peer_w for g, _, peer_w, _, _ in ambiguous}
        pieces = [p for p in chosen if p not in judged]
        if counter is None or not pieces:
            out.extend(chosen)
            break
        parent = {p: g for g, *_, options in ambiguous for o in options for p in o}
        p_several = dict(zip(pieces, reader.counts(pieces)[:, SEVERAL], strict=True))
        candidates = []
        for p in chosen:
            if (
                p in p_several
                and p_several[p] >= cfg.several_whole
                and p.width >= cfg.count_aspect * max(p.height, typical_h)
            ):
                candidates.append((p, False, peer_of[parent[p]], True))
            else:
                out.append(p)
    else:  # the rounds are used up: what the counting network still doubts stays as it was cut
        out.extend(g for g, *_ in candidates)
    return sorted(out, key=lambda g: (g.x0 + g.x1) / 2)


def _box_distance(a: _Group, b: _Group) -> float:
    dx = max(a.x0 - b.x1, b.x0 - a.x1, 0)
    dy = max(a.y0 - b.y1, b.y0 - a.y1, 0)
    return math.hypot(dx, dy)


def _absorb_fragments(
    level: np.ndarray, groups: list[_Group], typical_h: float, cfg: SegmentConfig
) -> list[_Group]:
    """Parts too short to be a digit join the nearest digit when they touch its box, else go."""
    digits = [g for g in groups if g.height >= cfg.fragment_height * typical_h]
    for part in (g for g in groups if g.height < cfg.fragment_height * typical_h):
        if not digits or (part.width >= typical_h and part.height <= 0.25 * typical_h):
            continue  # an underline, a dash or a ruled line: not part of any digit

        gaps = [_box_distance(d, part) for d in digits]
        nearest = int(np.argmin(gaps))
        if gaps[nearest] <= cfg.fragment_reach * typical_h:
            digits[nearest] = _union(level, [digits[nearest], part])
    return digits


def _choose_splits(
    ambiguous: list[tuple[_Group, bool, float | None, bool, list[list[_Group]]]],
    reader: _Reader,
    cfg: SegmentConfig,
    typical_w: float,
) -> list[_Group]:
    """Ask the classifier: keep each group whole or take the cut whose pieces it reads best.

    Among the cuts, a reading's score is the sum of log-confidences of its pieces, with a price per
    extra piece and for pieces much wider than this number's digits. The CNN is confident about
    halves of a digit too, so a group that is not far too wide for one digit is only cut when every
    piece is full height and reads with next to no doubt while the whole leaves some (a little
    less doubt suffices when the group is much wider than the other digits of the number).

    A group the counting network takes for several digits is cut where its pieces are most surely
    one digit each and read best, provided no piece is clearly part of a digit (not asked when the
    network is sure of several and the group is not wide: a "1" is a bare stroke) and the CNN reads
    every piece well; otherwise it is judged as any other group, unless the counting network is
    sure it is one digit (then it stays whole, however wide).
    """
    pieces, spans = [], []
    for g, _, _, _, options in ambiguous:
        for candidate in [[g], *options]:
            start = len(pieces)
            pieces.extend(candidate)
            spans.append((start, len(pieces)))
    confidence = reader.confidence(pieces)
    log_conf = np.log(confidence)
    counted = [p for g, _, _, several, options in ambiguous if several for o in options for p in o]
    if counted:
        reader.counts(counted)  # every piece of every cut of those groups, in one batch
    out, index = [], 0
    for g, wide, peer_w, several, options in ambiguous:
        start, stop = spans[index]
        whole_confidence = float(confidence[start])
        index += 1
        best, best_score, best_min, best_height = options[0], -np.inf, 0.0, 0
        one_best, one_score = None, -np.inf
        part_veto = not several or wide or float(reader.counts([g])[0, SEVERAL]) < cfg.sure_several
        for candidate in options:
            start, stop = spans[index]
            index += 1
            score = float(log_conf[start:stop].sum()) + cfg.split_log_price * (len(candidate) - 1)
            score += cfg.wide_log_price * sum(
                max(0.0, p.width / typical_w - cfg.wide_piece) for p in candidate
            )
            if score > best_score:
                best, best_score = candidate, score
                best_min = float(confidence[start:stop].min())
                best_height = min(p.height for p in candidate)
            if several:
                counts = reader.counts(candidate)
                one_piece_score = score + float(np.log(np.clip(counts[:, ONE], 1e-6, 1.0)).sum())
                if (
                    (not part_veto or counts[:, PART].max() <= cfg.several_piece_part)
                    and confidence[start:stop].min() >= cfg.several_piece_confidence
                    and one_piece_score > one_score
                ):
                    one_best, one_score = candidate, one_piece_score
        if one_best is not None:
            out.extend(one_best)
            continue
        if reader.counter is not None and float(reader.counts([g])[0, ONE]) >= cfg.sure_one:
            out.append(g)
            continue
        wider_than_peers = peer_w is not None and g.width > cfg.wide_piece * peer_w
        pieces_sure = best_min >= cfg.cut_piece_confidence and best_height >= cfg.cut_piece_height * g.height
        doubted = whole_confidence < (cfg.unsure_whole_if_wider if wider_than_peers else cfg.unsure_whole)
        if wide or (pieces_sure and doubted):
            out.extend(best)
        else:
            out.append(g)
    return out


def segment_digits(
    gray: np.ndarray,
    cfg: PreprocessConfig | None = None,
    seg: SegmentConfig = SegmentConfig(),
    scorer: Scorer | None = None,
    counter: Scorer | None = None,
) -> Segmentation:
    """(H, W) grey image in [0, 1], any polarity → the digits in reading order, each as a 28×28.

    `scorer` maps (N, 28, 28) images to the classifier's class probabilities; with it, touching
    digits are cut where the pieces read best, without it by the vertical projection only. The
    digits it has read carry those probabilities (`DigitCut.probs`), so they need no second pass.
    Raises NoInkFound when nothing digit-like is there.
    """
    cfg = cfg or PreprocessConfig()
    ink = ink_map(gray, cfg, max_side=seg.work_side, stats_step=seg.stats_step)
    level = _drop_margin_lines(ink.level, seg)
    components = _components(level)
    level, components = _drop_specks(level, components, seg)
    notes: list[str] = []
    angle = estimate_slant(level, seg, components)
    back = None
    if seg.min_deskew_deg <= abs(angle) <= seg.max_deskew_deg:
        level, back = _rotate(level, angle)
        notes.append(f"the number was tilted by {angle:+.0f}° and was straightened")
    else:
        angle = 0.0
    reader = _Reader(level, cfg, scorer, counter)
    groups = _digit_groups(level, seg, reader)
    groups = [g for g in groups if max(g.width, g.height) >= cfg.min_ink_side]
    if len(groups) > 1 and scorer is not None:
        groups = _whole_if_one_digit(level, groups, reader, seg)
    if len(groups) > 1 and counter is not None:
        groups = _merge_parts(level, groups, reader, seg)
    if not groups:
        raise NoInkFound("no digit found (only a few stray marks)")
    if len(groups) > seg.max_digits:
        notes.append(f"found {len(groups)} marks; only the {seg.max_digits} largest were read as digits")
        groups = sorted(sorted(groups, key=lambda g: -g.mass)[: seg.max_digits], key=lambda g: g.x0)
    digits = [
        DigitCut(
            image=reader.crop(g),
            box=_box_in_input(g, back, ink.scale, gray.shape),
            probs=reader.known_probs(g),
        )
        for g in groups
    ]
    return Segmentation(digits, ink.inverted, ink.contrast, round(angle, 2), tuple(notes))


def _whole_if_one_digit(
    level: np.ndarray, groups: list[_Group], reader: _Reader, cfg: SegmentConfig
) -> list[_Group]:
    """Parts that together are no wider than one digit may be one digit cut apart (a tight crop's
    0 whose sides were taken for ruled lines, a 4 written in two strokes): the CNN decides.

    Not when every part is about as tall as the whole and reads clearly on its own: that is a
    narrow number such as "12", and the CNN's confident reading of the pair squeezed into one
    28×28 (often just the 2) must not swallow the 1. Nor when the counting network takes the whole
    for several digits.
    """
    whole = _union(level, groups)
    if whole is None or whole.width > cfg.single_aspect * whole.height:
        return groups
    confidence = reader.confidence([whole, *groups])
    full_height = all(g.height >= cfg.separate_height * whole.height for g in groups)
    if full_height and float(confidence[1:].min()) >= cfg.sure_pieces:
        return groups
    if reader.counter is not None and float(reader.counts([whole])[0, SEVERAL]) >= cfg.several_whole:
        return groups  # a "17" whose 7 reads less surely than the pair squeezed into one "1"
    parts_score = float(np.log(confidence[1:]).sum()) + cfg.split_log_price * (len(groups) - 1)
    return [whole] if float(np.log(confidence[0])) >= parts_score else groups


def _merge_parts(
    level: np.ndarray, groups: list[_Group], reader: _Reader, cfg: SegmentConfig
) -> list[_Group]:
    """Join neighbours that are two halves of one digit: either is part of a digit for the counting
    network, and their union is one digit that the CNN reads well. Checked pairwise, left to right."""
    height = float(np.median([g.height for g in groups]))
    close = [
        i for i in range(len(groups) - 1) if groups[i + 1].x0 - groups[i].x1 <= cfg.part_merge_gap * height
    ]
    if not close:
        return groups
    unions = {i: _union(level, groups[i : i + 2]) for i in close}
    unions = {i: u for i, u in unions.items() if u is not None and u.width <= cfg.single_aspect * u.height}
    if not unions:
        return groups
    involved = list(dict.fromkeys([g for i in unions for g in groups[i : i + 2]] + list(unions.values())))
    reader.counts(involved)  # one batch
    merged, i = [], 0
    while i < len(groups):
        union = unions.get(i)
        if union is not None:
            parts = reader.counts(groups[i : i + 2])[:, PART]
            one = float(reader.counts([union])[0, ONE])
            confidence = float(reader.confidence([union])[0])
            if (
                parts.max() >= cfg.part_merge_part
                and one >= cfg.part_merge_one
                and confidence >= cfg.part_merge_confidence
            ) or (parts.min() >= cfg.both_parts and confidence >= cfg.both_parts_confidence):
                merged.append(union)
                i += 2
                continue
        merged.append(groups[i])
        i += 1
    return merged


def _drop_margin_lines(level: np.ndarray, cfg: SegmentConfig) -> np.ndarray:
    """Erase a lone vertical line down most of the picture (a notebook's margin) that touches no
    other ink. The single-digit path keeps it for a tight crop's 1; here it would read as an extra 1."""
    ink = level > 0
    h, w = ink.shape
    cover = ink.mean(0)
    bands, count = ndimage.label(cover >= cfg.margin_cover)
    out = level
    for band in range(1, count + 1):
        cols = np.flatnonzero(bands == band)
        left, right = int(cols[0]), int(cols[-1]) + 1
        if right - left > max(3, cfg.rule_thickness * 0.5 * w):
            continue  # a thick bar: ink, not a ruled line
        beside = np.concatenate([ink[:, max(0, left - 3) : left], ink[:, right : right + 3]], axis=1)
        others = ink.copy()
        others[:, left:right] = False
        if beside.any(1).mean() > 0.05 or not others.any():
            continue  # joined to strokes, or the only ink there is (a tightly cropped 1)
        rows = np.flatnonzero(others.any(1))
        if rows[-1] - rows[0] + 1 > cfg.margin_cover * h:
            continue  # the other ink is as tall: this may be a digit's stroke
        out = out.copy() if out is level else out
        out[:, left:right] = 0
    return out


def _drop_specks(level: np.ndarray, components: tuple, cfg: SegmentConfig) -> tuple[np.ndarray, tuple]:
    """Remove components with a negligible share of the ink, and broad faint patches (a shadow or
    a fold in the paper that crosses the ink threshold), before anything is measured on them.

    Also returns `components` with the dropped ones weighing nothing, for the slant estimate.
    """
    labels, slices, mass = components
    not_speck = mass >= cfg.speck_mass * mass.max()
    darkness = mass / np.bincount(labels.ravel(), minlength=len(mass) + 1)[1:]
    keep = not_speck & (darkness >= cfg.faint_ink * darkness[not_speck].max())
    kept = np.where(np.isin(labels, np.flatnonzero(keep) + 1), level, 0).astype(np.float32)
    return kept, (labels, slices, np.where(keep, mass, 0.0))


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
