"""Photo-like and printed digit images made from system fonts: a TEST set, never training data.

The network is trained on MNIST only. These renders stand in for what people really send, so the
figure measured on them says something about the app beyond MNIST:

- ``photo``:  dark pen-coloured ink on tinted paper with uneven lighting (gradient + shadow),
  paper grain, off-centre and fairly small, slightly rotated, blurred, JPEG-compressed;
- ``print``:  a printed digit in a bold or serif face, off-centre on white, JPEG;
- ``thick``:  fat white strokes on black, like a canvas brush (PNG);
- ``chalk``:  light ink on a dark, noisy board (inverted polarity, JPEG);
- ``ruled``:  ink on ruled notebook paper (horizontal rules, sometimes a margin line), JPEG;
- ``tight``:  a printed digit cropped right to its ink, so strokes touch the image edges (PNG).

Usage: ``python -m models.vision.photo_digits --out DIR [--per-digit 5] [--seed 1]`` writes
``<kind>_<digit>_<i>.<ext>`` files and ``labels.csv`` (file,label,kind,font).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"), Path("/Library/Fonts"))
# Bold and serif faces, as the issue asks; whichever of these the system has.
FONT_NAMES = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSans.ttf",
    "DejaVuSansMono-Bold.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationSerif-Bold.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationMono-Bold.ttf",
)
KINDS = ("photo", "print", "thick", "chalk", "ruled", "tight")


@dataclass(frozen=True)
class Sample:
    data: bytes  # encoded file (JPEG or PNG)
    ext: str
    label: int
    kind: str
    font: str


def find_fonts() -> list[Path]:
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for path in root.rglob("*.ttf"):
            if path.name in FONT_NAMES and path.name not in found:
                found[path.name] = path
    return [found[name] for name in FONT_NAMES if name in found]


def _glyph(digit: int, font_path: Path, height: int, stroke: int) -> Image.Image:
    """The digit as an 'L' mask (255 = ink), tightly cropped."""
    font = ImageFont.truetype(str(font_path), size=height)
    canvas = Image.new("L", (height * 2, height * 2), 0)
    ImageDraw.Draw(canvas).text(
        (height // 2, height // 4), str(digit), fill=255, font=font, stroke_width=stroke
    )
    return canvas.crop(canvas.getbbox())


def _place(mask: Image.Image, size: tuple[int, int], rng: random.Random, angle: float, centre_jitter: float):
    """Rotate the glyph and paste it off-centre into an empty mask of `size`."""
    glyph = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    out = Image.new("L", size, 0)
    w, h = size
    gw, gh = glyph.size
    cx = w / 2 + rng.uniform(-centre_jitter, centre_jitter) * (w - gw) / 2
    cy = h / 2 + rng.uniform(-centre_jitter, centre_jitter) * (h - gh) / 2
    out.paste(glyph, (int(cx - gw / 2), int(cy - gh / 2)))
    return out


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render(digit: int, kind: str, font_path: Path, rng: random.Random) -> Sample:
    np_rng = np.random.default_rng(rng.getrandbits(32))
    if kind == "photo":
        w, h = rng.choice([(320, 240), (240, 320), (300, 300)])
        glyph = _glyph(
            digit, font_path, int(min(w, h) * rng.uniform(0.35, 0.6)), stroke=rng.choice([0, 1, 2])
        )
        mask = _place(glyph, (w, h), rng, rng.uniform(-12, 12), centre_jitter=0.7)
        mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        gx, gy = rng.uniform(-0.35, 0.35), rng.uniform(-0.35, 0.35)
        light = 0.85 + gx * (xx - 0.5) + gy * (yy - 0.5)  # uneven lighting
        sx, sy, sr = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.2, 0.5)
        light -= rng.uniform(0.0, 0.25) * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / sr**2)  # a soft shadow
        tint = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.85, 1.0), rng.uniform(0.7, 0.95)])  # warm paper
        paper = light[..., None] * tint[None, None, :] + np_rng.normal(0, 0.025, (h, w, 1))
        ink_colour = np.array(rng.choice([(0.05, 0.05, 0.08), (0.1, 0.15, 0.45), (0.2, 0.2, 0.2)]))
        alpha = (np.asarray(mask, dtype=np.float32) / 255 * rng.uniform(0.75, 1.0))[..., None]
        rgb = paper * (1 - alpha) + ink_colour[None, None, :] * alpha
        image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
        return Sample(_jpeg(image, rng.randint(35, 80)), "jpg", digit, kind, font_path.name)
    if kind == "ruled":
        w, h = rng.choice([(320, 240), (300, 300)])
        glyph = _glyph(digit, font_path, int(min(w, h) * rng.uniform(0.35, 0.55)), stroke=rng.choice([0, 1]))
        mask = _place(glyph, (w, h), rng, rng.uniform(-8, 8), centre_jitter=0.5)
        mask = (
            np.asarray(mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0))), dtype=np.float32) / 255
        )
        paper = 0.92 + np_rng.normal(0, 0.02, mask.shape) - 0.15 * np.linspace(0, 1, w)[None, :]
        gap, offset = rng.randint(22, 40), rng.randint(0, 20)
        for y in range(offset, h, gap):  # blue-grey rules across the page
            paper[y : y + rng.choice([1, 2]), :] -= rng.uniform(0.2, 0.35)
        if rng.random() < 0.5:
            x = rng.randint(10, w // 5)
            paper[:, x : x + 2] -= 0.3  # a margin line
        grey = paper * (1 - mask) + 0.08 * mask
        image = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")
        return Sample(_jpeg(image, rng.randint(40, 85)), "jpg", digit, kind, font_path.name)
    if kind == "tight":  # a printed digit cropped right to its ink (strokes touch the edges)
        glyph = _glyph(digit, font_path, rng.randint(60, 220), stroke=rng.choice([0, 0, 1, 2]))
        grey = 1.0 - np.asarray(glyph, dtype=np.float32) / 255 * rng.uniform(0.7, 0.95)
        image = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L")
        return Sample(_png(image), "png", digit, kind, font_path.name)
    if kind == "print":
        w, h = rng.choice([(200, 200), (260, 180), (180, 260)])
        glyph = _glyph(digit, font_path, int(min(w, h) * rng.uniform(0.4, 0.75)), stroke=0)
        mask = (
            np.asarray(_place(glyph, (w, h), rng, rng.uniform(-4, 4), centre_jitter=0.6), dtype=np.float32)
            / 255
        )
        grey = 0.97 - 0.9 * mask + np_rng.normal(0, 0.01, mask.shape)
        image = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L")
        return Sample(_jpeg(image, rng.randint(50, 90)), "jpg", digit, kind, font_path.name)
    if kind == "thick":
        side = 280
        height = int(side * rng.uniform(0.5, 0.75))
        glyph = _glyph(digit, font_path, height, stroke=max(2, int(height * rng.uniform(0.03, 0.06))))
        mask = _place(glyph, (side, side), rng, rng.uniform(-8, 8), centre_jitter=0.5)
        return Sample(_png(mask), "png", digit, kind, font_path.name)
    if kind == "chalk":
        w, h = 260, 220
        glyph = _glyph(digit, font_path, int(h * rng.uniform(0.4, 0.7)), stroke=rng.choice([1, 2, 3]))
        mask = (
            np.asarray(_place(glyph, (w, h), rng, rng.uniform(-10, 10), centre_jitter=0.6), dtype=np.float32)
            / 255
        )
        board = 0.18 + np_rng.normal(0, 0.04, mask.shape)
        grey = board + (0.85 - board) * mask * np_rng.uniform(0.7, 1.0, mask.shape)
        image = Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")
        return Sample(_jpeg(image, rng.randint(40, 80)), "jpg", digit, kind, font_path.name)
    raise ValueError(f"unknown kind {kind!r}")


def generate(per_digit: int = 5, seed: int = 1, kinds: tuple[str, ...] = KINDS) -> list[Sample]:
    """`per_digit` renders of each digit 0-9 for each kind, fonts cycling; empty without fonts."""
    fonts = find_fonts()
    if not fonts:
        return []
    rng = random.Random(seed)
    samples = []
    for kind in kinds:
        for digit in range(10):
            for i in range(per_digit):
                samples.append(render(digit, kind, fonts[(digit + i * 3) % len(fonts)], rng))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-digit", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    samples = generate(args.per_digit, args.seed)
    if not samples:
        raise SystemExit("no usable TrueType fonts found (install fonts-dejavu-core or fonts-liberation)")
    args.out.mkdir(parents=True, exist_ok=True)
    counters: dict[tuple[str, int], int] = {}
    with (args.out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "kind", "font"])
        for sample in samples:
            i = counters.get((sample.kind, sample.label), 0)
            counters[(sample.kind, sample.label)] = i + 1
            name = f"{sample.kind}_{sample.label}_{i}.{sample.ext}"
            (args.out / name).write_bytes(sample.data)
            writer.writerow([name, sample.label, sample.kind, sample.font])
    print(f"wrote {len(samples)} images and labels.csv to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
