"""How many digits a cut-out holds: one, several side by side, or only part of one.

The digit CNN reads whatever 28×28 it is given and is sure of itself: two touching digits squeezed
into one box ("66", "41", "89") come back as one confident digit, and the halves of a 0 or a 3 read
as digits too. The multi-digit reader (`segment.py`) therefore asks a second network, with the same
architecture and the same input, a different question: is this cut-out **one digit**, **several
digits** or **part of a digit**? It decides whether a group of ink is cut and which cuts are kept.

Its training set is composed here from MNIST **training** digits only, the way the reader meets
them: each cut-out goes through the same `normalise_crop` as a real group of ink.

- one digit: a digit at a random size and thickness of line;
- several digits: two (sometimes three) digits side by side, gaps from overlapping to a little
  apart, baselines and sizes uneven, as in quick handwriting;
- part of a digit: a digit cut through at a random column (either side kept), or a window from the
  inside of one digit to the inside of its neighbour (a cut in the wrong places).

The digit CNN's own training is untouched: this network is trained separately and its answer
never changes which digit a cut-out is read as.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from models.vision import PACKAGE_DIR, DigitBundle, PreprocessConfig
from models.vision.preprocess import normalise_crop

logger = logging.getLogger(__name__)

COUNT_LABELS = ("one digit", "several digits", "part of a digit")
ONE, SEVERAL, PART = range(3)
HELD_OUT_DIGITS = 5000  # the last MNIST training digits: validation cut-outs are made from them only

DIGIT_COUNT = DigitBundle(
    name="mnist-digit-count",
    weights=PACKAGE_DIR / "count.safetensors",
    labels=COUNT_LABELS,
    training="cut-outs composed from MNIST training digits (one, several side by side, part of one)",
)


@dataclass(frozen=True)
class CountDataConfig:
    samples: int = 60_000  # shared equally by the three classes
    heights: tuple[int, int] = (26, 80)  # digit height in working pixels, as the reader meets them
    several_gap: tuple[float, float] = (-0.18, 0.12)  # gap between neighbours, × the digit height
    three_share: float = 0.2  # "several" cut-outs with three digits instead of two
    part_cut: tuple[float, float] = (0.25, 0.75)  # where a digit is cut through, × its width
    seed: int = 0


def _ink_box(a: np.ndarray, floor: float = 0.05) -> np.ndarray:
    rows, cols = np.flatnonzero((a > floor).any(1)), np.flatnonzero((a > floor).any(0))
    if rows.size == 0:
        return a
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _scaled(digit: np.ndarray, height: float, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 uint8 MNIST digit → its ink at about `height` pixels tall, float in [0, 1]."""
    crop = _ink_box(digit.astype(np.float32) / 255)
    scale = height * rng.uniform(0.88, 1.1) / 20  # MNIST ink is about 20 px tall
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    return np.clip(np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC)), 0, 1)


def _side_by_side(
    pieces: list[np.ndarray], gaps: list[int], offsets: list[int]
) -> tuple[np.ndarray, list[int]]:
    """Pieces left to right (gap before each but the first; < 0 overlaps) → canvas and each left edge."""
    lefts, x = [], 0
    for i, piece in enumerate(pieces):
        if i:
            x = max(0, x + gaps[i])
        lefts.append(x)
        x += piece.shape[1]
    top = -min(offsets)
    height = max(p.shape[0] + o for p, o in zip(pieces, offsets, strict=True)) + top
    canvas = np.zeros(
        (height, max(left + p.shape[1] for left, p in zip(lefts, pieces, strict=True))), np.float32
    )
    for piece, left, offset in zip(pieces, lefts, offsets, strict=True):
        region = canvas[top + offset : top + offset + piece.shape[0], left : left + piece.shape[1]]
        np.maximum(region, piece, out=region)
    return canvas, lefts


def _neighbours(images: np.ndarray, count: int, height: float, gap: tuple[float, float], rng) -> tuple:
    pieces = [_scaled(images[rng.integers(len(images))], height, rng) for _ in range(count)]
    gaps = [round(height * rng.uniform(*gap)) for _ in pieces]
    offsets = [round(height * rng.uniform(-0.07, 0.07)) for _ in pieces]
    return pieces, *_side_by_side(pieces, gaps, offsets)


def _as_level(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch the ink as `ink_map` does (a noise floor, then strokes saturate), at a random floor."""
    floor = rng.uniform(0.1, 0.35)
    return np.clip((ink - floor) / (0.85 - floor), 0, 1)


def compose_cutout(
    images: np.ndarray, kind: int, rng: np.random.Generator, cfg: CountDataConfig
) -> np.ndarray:
    """One cut-out of `kind` (ONE, SEVERAL or PART) from MNIST digits → the 28×28 the reader would see."""
    height = rng.uniform(*cfg.heights)
    if kind == ONE:
        ink = _scaled(images[rng.integers(len(images))], height, rng)
    elif kind == SEVERAL:
        count = 3 if rng.random() < cfg.three_share else 2
        _, ink, _ = _neighbours(images, count, height, cfg.several_gap, rng)
    elif rng.random() < 0.5:  # a digit cut through: one side of it
        digit = _scaled(images[rng.integers(len(images))], height, rng)
        cut = max(1, round(digit.shape[1] * rng.uniform(*cfg.part_cut)))
        ink = digit[:, :cut] if rng.random() < 0.5 else digit[:, cut:]
    else:  # from inside one digit to inside the next: both cuts in the wrong place
        pieces, canvas, lefts = _neighbours(images, 2, height, (-0.05, 0.3), rng)
        start = lefts[0] + round(pieces[0].shape[1] * rng.uniform(0.3, 0.8))
        stop = lefts[1] + round(pieces[1].shape[1] * rng.uniform(0.2, 0.7))
        ink = canvas[:, start : max(stop, start + 2)]
    ink = _ink_box(_as_level(ink, rng))
    if ink.max() <= 0 or min(ink.shape) < 2:  # a cut that kept no ink: a plain digit instead
        return compose_cutout(images, ONE, rng, cfg)
    return normalise_crop(ink, PreprocessConfig())[0]


def compose_dataset(images: np.ndarray, cfg: CountDataConfig) -> dict[str, np.ndarray]:
    """`cfg.samples` cut-outs (uint8, 28×28, ink bright) with their class, classes in equal shares."""
    rng = np.random.default_rng(cfg.seed)
    kinds = np.arange(cfg.samples) % len(COUNT_LABELS)
    rng.shuffle(kinds)
    x = np.empty((cfg.samples, 28, 28), np.uint8)
    for i, kind in enumerate(tqdm(kinds, desc="composing cut-outs", unit="img", leave=False)):
        x[i] = np.round(compose_cutout(images, int(kind), rng, cfg) * 255)
    return {"x_train": x, "y_train": kinds.astype(np.int64)}


def train_count_model(mnist: dict[str, np.ndarray], out: Path, data_cfg: CountDataConfig, train_cfg) -> dict:
    """Compose the cut-outs from MNIST **train** and train the counting network on them."""
    from models.vision.train import train

    started = time.perf_counter()
    data = compose_dataset(mnist["x_train"][:-HELD_OUT_DIGITS], data_cfg)
    composed_s = time.perf_counter() - started
    summary = train(data, out, replace(train_cfg, limit=None), DIGIT_COUNT, dataset="MNIST train cut-outs")
    counts = np.bincount(data["y_train"], minlength=len(COUNT_LABELS))
    return {
        "model": DIGIT_COUNT.name,
        "data": {**asdict(data_cfg), "per_class": dict(zip(COUNT_LABELS, counts.tolist(), strict=True))},
        "compose_seconds": round(composed_s, 1),
        **summary,
    }


def validation_accuracy(
    model, mnist: dict[str, np.ndarray], cfg: CountDataConfig, samples: int = 3000
) -> dict:
    """Accuracy on cut-outs from the last MNIST **train** digits, which training leaves out."""
    import torch

    from models.vision.train import classification_metrics, predict_tensor

    held = replace(cfg, samples=samples, seed=cfg.seed + 1000)
    data = compose_dataset(mnist["x_train"][-HELD_OUT_DIGITS:], held)
    probs = predict_tensor(model, torch.from_numpy(data["x_train"]).float().div_(255).unsqueeze(1))
    metrics = classification_metrics(data["y_train"], probs.argmax(1).numpy(), COUNT_LABELS)
    return {"accuracy": metrics["accuracy"], "per_class": metrics["per_class"], "n": samples}
