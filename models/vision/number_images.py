"""Numbers to test the multi-digit reader with: a TEST set generator, never training data.

Three kinds, each a file as people would send it:

- ``handwritten_photo``: MNIST digits (the **test** split by default) composed into a number with natural,
  uneven gaps (some touching), uneven sizes and baselines, tilted up to ±10°, then "photographed":
  pen-coloured ink on tinted paper, uneven light and a soft shadow, grain, blur, JPEG;
- ``printed_photo``: the number set in a system font (bold, serif, mono), tilted up to ±10° and
  photographed the same way (a house number, a meter or a label on paper), JPEG;
- ``canvas``: the number drawn with thick round-capped strokes, as a mouse or a finger does on the
  page's canvas, saved as the canvas returns it (black strokes on transparent RGBA), PNG.

Lengths run from 1 to 12 digits (most 3-6). Numbers never start with 0 only when the kind is a
house number would; here any digit may lead, since meters and codes do.

    python -m models.vision.number_images --data-dir ../shared/data/mnist --out /tmp/numbers
    python -m services.vision /tmp/numbers/*.* > /tmp/numbers.jsonl
    python -m models.vision.number_images --score /tmp/numbers --predictions /tmp/numbers.jsonl

The first writes ``<kind>_<i>.<ext>`` and ``labels.csv`` (file,label,kind); the last prints exact
match per kind. ``--split train`` composes MNIST training digits instead, for tuning the reader
without looking at the test digits; ``--split held-out`` only the last training digits, which the
counting network never trained on.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shlex
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from models.vision.count import HELD_OUT_DIGITS
from models.vision.photo_digits import find_fonts

KINDS = ("handwritten_photo", "printed_photo", "canvas")
# Length of the number → weight: house numbers and short codes most, phone numbers (10-12) too.
TOUCHING_SHARE = 0.125  # gaps where neighbouring handwritten digits touch or nearly do
LENGTHS = {1: 2, 2: 3, 3: 4, 4: 4, 5: 3, 6: 3, 7: 2, 8: 2, 9: 1, 10: 1, 11: 1, 12: 1}

# Canvas strokes for each digit: polylines in a unit box (x right, y down), smoothed when drawn.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.5, 0.0), (0.15, 0.15), (0.05, 0.5), (0.15, 0.85), (0.5, 1.0), (0.85, 0.85), (0.95, 0.5),
         (0.85, 0.15), (0.5, 0.0)]],
    1: [[(0.25, 0.2), (0.55, 0.0), (0.55, 1.0)]],
    2: [[(0.1, 0.25), (0.3, 0.03), (0.7, 0.03), (0.9, 0.25), (0.8, 0.5), (0.1, 1.0), (0.95, 1.0)]],
    3: [[(0.1, 0.1), (0.5, 0.0), (0.85, 0.15), (0.8, 0.4), (0.45, 0.5), (0.85, 0.6), (0.9, 0.85),
         (0.5, 1.0), (0.1, 0.9)]],
    4: [[(0.6, 0.0), (0.05, 0.68), (0.95, 0.68)], [(0.7, 0.3), (0.7, 1.0)]],
    5: [[(0.85, 0.0), (0.2, 0.0), (0.15, 0.45), (0.55, 0.38), (0.88, 0.58), (0.85, 0.87), (0.5, 1.0),
         (0.1, 0.9)]],
    6: [[(0.8, 0.03), (0.4, 0.12), (0.12, 0.5), (0.15, 0.87), (0.48, 1.0), (0.82, 0.88), (0.85, 0.62),
         (0.5, 0.48), (0.17, 0.63)]],
    7: [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)]],
    8: [[(0.5, 0.48), (0.17, 0.3), (0.2, 0.07), (0.5, 0.0), (0.8, 0.07), (0.83, 0.3), (0.5, 0.48),
         (0.12, 0.72), (0.2, 0.95), (0.5, 1.0), (0.8, 0.95), (0.88, 0.72), (0.5, 0.48)]],
    9: [[(0.85, 0.33), (0.5, 0.5), (0.15, 0.35), (0.2, 0.08), (0.5, 0.0), (0.8, 0.08), (0.85, 0.33),
         (0.78, 1.0)]],
}  # fmt: skip


@dataclass(frozen=True)
class NumberImage:
    data: bytes
    ext: str
    label: str
    kind: str


def _length(rng: random.Random) -> int:
    return rng.choices(list(LENGTHS), weights=list(LENGTHS.values()))[0]


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photograph(mask: np.ndarray, rng: random.Random, margin: tuple[float, float] = (0.15, 0.6)) -> bytes:
    """Ink `mask` (float, 1 = ink) as a phone photo of paper: light, shadow, tint, grain, blur, JPEG."""
    np_rng = np.random.default_rng(rng.getrandbits(32))
    h, w = mask.shape
    pad_x = int(w * rng.uniform(*margin) / 2) + 8
    pad_y = int(h * rng.uniform(margin[0], margin[1] * 2) / 2) + 8
    mask = np.pad(mask, ((pad_y, pad_y), (pad_x, pad_x)))
    shift_x, shift_y = rng.randint(-pad_x // 2, pad_x // 2), rng.randint(-pad_y // 2, pad_y // 2)
    mask = np.roll(mask, (shift_y, shift_x), axis=(0, 1))
    h, w = mask.shape
    blurred = Image.fromarray((mask * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.4, 1.3))
    )
    alpha = np.asarray(blurred, dtype=np.float32)[..., None] / 255 * rng.uniform(0.7, 1.0)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    gx, gy = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)
    light = 0.88 + gx * (xx - 0.5) + gy * (yy - 0.5)  # uneven lighting across the sheet
    sx, sy, sr = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.2, 0.5)
    light -= rng.uniform(0.0, 0.22) * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / sr**2)  # a soft shadow
    tint = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.86, 1.0), rng.uniform(0.72, 0.96)])
    paper = light[..., None] * tint + np_rng.normal(0, 0.02, (h, w, 1))
    ink = np.array(rng.choice([(0.05, 0.05, 0.08), (0.1, 0.15, 0.45), (0.22, 0.22, 0.24)]))
    rgb = paper * (1 - alpha) + ink * alpha
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return _encode(image, "JPEG", quality=rng.randint(45, 88))


def _tilt(mask: np.ndarray, angle: float) -> np.ndarray:
    image = Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8))
    turned = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    return np.asarray(turned, dtype=np.float32) / 255


def _ink_box(digit: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(digit.max(1) > 0.1), np.flatnonzero(digit.max(0) > 0.1)
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def compose_handwritten(
    digits: list[np.ndarray], rng: random.Random, height: int | None = None
) -> np.ndarray:
    """MNIST digits (28×28 uint8, ink bright) side by side with natural gaps → ink mask in [0, 1]."""
    height = height or rng.randint(36, 90)
    pieces, offsets = [], []
    for digit in digits:
        crop = _ink_box(digit.astype(np.float32) / 255)
        scale = height * rng.uniform(0.88, 1.1) / 20  # MNIST ink is about 20 px tall
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        pieces.append(np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC)))
        offsets.append(round(rng.uniform(-0.07, 0.07) * height))  # the baseline wanders a little
    # Natural gaps, uneven (0.05-0.45 of the height); one gap in eight is tight: the ink boxes
    # touch or overlap a little, so the strokes may meet, as they do in quick handwriting.
    gaps = [
        round(
            height * (rng.uniform(-0.06, 0.02) if rng.random() < TOUCHING_SHARE else rng.uniform(0.05, 0.45))
        )
        for _ in digits
    ]
    width = sum(p.shape[1] for p in pieces) + sum(max(g, 0) for g in gaps[1:]) + 2 * height
    canvas = np.zeros((2 * height + max(p.shape[0] for p in pieces), width), dtype=np.float32)
    x = height // 2
    for i, (piece, offset) in enumerate(zip(pieces, offsets, strict=True)):
        if i:
            x += gaps[i]
        top = height // 2 + offset + (int(height * 1.1) - piece.shape[0]) // 2
        top = max(0, top)
        region = canvas[top : top + piece.shape[0], x : x + piece.shape[1]]
        np.maximum(region, np.clip(piece, 0, 1)[: region.shape[0], : region.shape[1]], out=region)
        x += piece.shape[1]
    return _ink_box(canvas)


def handwritten(pool: dict[int, np.ndarray], rng: random.Random) -> NumberImage:
    """One handwritten number from `pool` (digit → stack of 28×28 MNIST images of that digit)."""
    label = "".join(str(rng.randrange(10)) for _ in range(_length(rng)))
    digits = [pool[int(c)][rng.randrange(len(pool[int(c)]))] for c in label]
    mask = _tilt(compose_handwritten(digits, rng), rng.uniform(-10, 10))
    return NumberImage(_photograph(mask, rng, margin=(0.15, 1.2)), "jpg", label, "handwritten_photo")


def printed(fonts: list[Path], rng: random.Random, label: str | None = None) -> NumberImage:
    label = label or "".join(str(rng.randrange(10)) for _ in range(_length(rng)))
    font_path = rng.choice(fonts)
    size = rng.randint(40, 110)
    font = ImageFont.truetype(str(font_path), size=size)
    stroke = rng.choice([0, 0, 0, 1]) if size > 60 else 0
    spacing = rng.uniform(0.0, 0.25) * size  # tracking: tight (touching in bold faces) to airy
    left, top, right, bottom = font.getbbox(label, stroke_width=stroke)
    width = int(right - left + spacing * len(label) + size)
    canvas = Image.new("L", (width, int((bottom - top) + size)), 0)
    draw = ImageDraw.Draw(canvas)
    x = size / 2
    for char in label:
        draw.text((x, size / 2 - top), char, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
        x += font.getlength(char) + spacing
    mask = _ink_box(np.asarray(canvas, dtype=np.float32) / 255)
    mask = _tilt(mask, rng.uniform(-10, 10))
    return NumberImage(_photograph(mask, rng, margin=(0.1, 0.5)), "jpg", label, "printed_photo")


def _smooth(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Chaikin corner cutting: a hand's curve through the template's corners."""
    for _ in range(rounds):
        a, b = points[:-1], points[1:]
        cut = np.empty((2 * len(a), 2))
        cut[0::2] = 0.75 * a + 0.25 * b
        cut[1::2] = 0.25 * a + 0.75 * b
        points = np.vstack([points[:1], cut, points[-1:]])
    return points


def canvas(rng: random.Random) -> NumberImage:
    """A number drawn as on the page's canvas: black round strokes on transparent RGBA."""
    label = "".join(str(rng.randrange(10)) for _ in range(rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6, 8])))
    height = rng.randint(70, 130)
    stroke = max(6, int(height * rng.uniform(0.09, 0.18)))
    slant = rng.uniform(-0.2, 0.15)
    width_total = int(len(label) * height * 1.1 + 2 * height)
    image = Image.new("RGBA", (width_total, int(height * 1.9)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    x = height * 0.5
    for char in label:
        digit_w = height * (0.3 if char == "1" else rng.uniform(0.5, 0.72))
        top = height * 0.45 + rng.uniform(-0.06, 0.06) * height
        for line in STROKES[int(char)]:
            pts = np.asarray(line, dtype=np.float64) + np.asarray(
                [[rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04)] for _ in line]
            )
            pts = _smooth(pts)
            xs = x + pts[:, 0] * digit_w + (1 - pts[:, 1]) * slant * height
            ys = top + pts[:, 1] * height
            coords = list(zip(xs.tolist(), ys.tolist(), strict=True))
            draw.line(coords, fill=(0, 0, 0, 255), width=stroke, joint="curve")
            for cx, cy in (coords[0], coords[-1]):  # round caps, as a brush leaves
                draw.ellipse(
                    (cx - stroke / 2, cy - stroke / 2, cx + stroke / 2, cy + stroke / 2), fill=(0, 0, 0, 255)
                )
        x += digit_w + height * rng.uniform(0.15, 0.5)
    right = min(width_total, int(x + height * 0.4))
    return NumberImage(_encode(image.crop((0, 0, right, image.height)), "PNG"), "png", label, "canvas")


SPLITS = ("test", "train", "held-out")


def load_pool(data_dir: Path, split: str) -> dict[int, np.ndarray]:
    """Digit → its MNIST images from `split`: "test", "train", or "held-out", the last training
    digits, which the counting network never trained on (validation for the reader's thresholds)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    source = "test" if split == "test" else "train"
    with np.load(data_dir / "mnist.npz") as data:
        images, labels = data[f"x_{source}"], data[f"y_{source}"]
    if split == "held-out":
        images, labels = images[-HELD_OUT_DIGITS:], labels[-HELD_OUT_DIGITS:]
    return {d: images[labels == d] for d in range(10)}


def generate(
    per_kind: int,
    seed: int = 1,
    pool: dict[int, np.ndarray] | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> list[NumberImage]:
    """`per_kind` numbers of each kind; handwritten needs `pool`, printed needs system fonts."""
    rng = random.Random(seed)
    fonts = find_fonts()
    out = []
    for kind in kinds:
        for _ in range(per_kind):
            if kind == "handwritten_photo":
                if pool is None:
                    raise ValueError("handwritten numbers need MNIST digits (--data-dir)")
                out.append(handwritten(pool, rng))
            elif kind == "printed_photo":
                if not fonts:
                    raise ValueError("printed numbers need TrueType fonts (fonts-dejavu-core)")
                out.append(printed(fonts, rng))
            elif kind == "canvas":
                out.append(canvas(rng))
            else:
                raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return out


def score(folder: Path, predictions: Path) -> dict[str, dict[str, float]]:
    """Exact match per kind, from labels.csv and the JSON lines of `python -m services.vision`."""
    with (folder / "labels.csv").open() as handle:
        truth = {row["file"]: row for row in csv.DictReader(handle)}
    hits: dict[str, list[bool]] = defaultdict(list)
    digits: dict[str, list[float]] = defaultdict(list)
    for line in predictions.read_text().splitlines():
        record = json.loads(line)
        row = truth.get(Path(record["file"]).name)
        if row is None:
            continue
        predicted = record.get("label") or ""
        hits[row["kind"]].append(predicted == row["label"])
        same = sum(a == b for a, b in zip(predicted, row["label"], strict=False))
        digits[row["kind"]].append(same / max(len(predicted), len(row["label"])))
    return {
        kind: {
            "exact_match": round(sum(v) / len(v), 4),
            "digit_accuracy": round(float(np.mean(digits[kind])), 4),
            "n": len(v),
        }
        for kind, v in sorted(hits.items())
    }


def record_numbers(metrics_path: Path, folder: Path, result: dict, argv: list[str]) -> None:
    """Merge the exact-match figures, and the commands that produced them, into metrics.json."""
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    generated_path = folder / "generated.json"
    generated = json.loads(generated_path.read_text()) if generated_path.is_file() else {}
    metrics["numbers"] = {
        **result,
        "generated_by": generated.get("command"),
        "mnist_split": generated.get("split"),
        "read_by": f"python -m services.vision {folder}/*.jpg {folder}/*.png",
        "scored_by": shlex.join(["python", "-m", "models.vision.number_images", *argv]),
    }
    metrics_path.write_text(json.dumps(metrics, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.vision.number_images", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, help="folder to write the images and labels.csv into")
    parser.add_argument("--data-dir", type=Path, help="folder holding mnist.npz (for handwritten numbers)")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="test",
        help="MNIST digits to compose (held-out: the last training digits, unseen by the counting network)",
    )
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS)
    )
    parser.add_argument(
        "--score", type=Path, metavar="FOLDER", help="score predictions against FOLDER/labels.csv"
    )
    parser.add_argument("--predictions", type=Path, help="JSON lines from python -m services.vision")
    parser.add_argument(
        "--metrics-out", type=Path, help="with --score: add the figures as `numbers` to this metrics.json"
    )
    args = parser.parse_args(argv)
    if args.score:
        if not args.predictions:
            parser.error("--score needs --predictions")
        result = score(args.score, args.predictions)
        if args.metrics_out:
            record_numbers(args.metrics_out, args.score, result, argv if argv is not None else sys.argv[1:])
        for kind, row in result.items():
            print(
                f"{kind:>12}: exact match {row['exact_match']:.3f}  digits {row['digit_accuracy']:.3f}  (n={row['n']})"
            )
        print(json.dumps(result))
        return 0
    if not args.out:
        parser.error("--out is required to generate")
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if "handwritten_photo" in kinds and args.data_dir is None:
        parser.error("handwritten numbers need --data-dir (the folder with mnist.npz)")
    pool = load_pool(args.data_dir, args.split) if "handwritten_photo" in kinds else None
    samples = generate(args.per_kind, args.seed, pool, kinds)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "kind"])
        counters: dict[str, int] = defaultdict(int)
        for sample in samples:
            name = f"{sample.kind}_{counters[sample.kind]:04d}.{sample.ext}"
            counters[sample.kind] += 1
            (args.out / name).write_bytes(sample.data)
            writer.writerow([name, sample.label, sample.kind])
    generated = {
        "command": shlex.join(
            ["python", "-m", "models.vision.number_images", *(argv if argv is not None else sys.argv[1:])]
        ),
        "split": args.split,
        "per_kind": args.per_kind,
        "seed": args.seed,
    }
    (args.out / "generated.json").write_text(json.dumps(generated, indent=1) + "\n")
    print(
        f"wrote {len(samples)} images and labels.csv to {args.out} (MNIST {args.split} digits)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
