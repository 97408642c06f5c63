"""Rebuild the bundled example gallery in models/vision/examples/ (small files, a few kB each).

    python -m models.vision.make_examples --data-dir ../shared/data/mnist

- six MNIST *test* digits, saved as the original 28×28 PNGs (MNIST: CC BY-SA 3.0, LeCun et al.);
- photo-like and printed renders from models/vision/photo_digits.py (fonts, not training data);
- two digits drawn here with thick polyline strokes, like a mouse/finger drawing on a canvas.
"""

from __future__ import annotations

import argparse
import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from models.vision import EXAMPLES_DIR
from models.vision.photo_digits import find_fonts, render

MNIST_PICKS = {7: 0, 2: 1, 1: 2, 0: 3, 4: 4, 9: 7}  # digit → index in the MNIST test set

# Hand-made strokes on a 280×280 canvas (x, y points of a polyline).
DRAWINGS = {
    4: [[(170, 250), (170, 40), (60, 180), (220, 180)]],
    3: [
        [
            (80, 60),
            (140, 40),
            (200, 70),
            (190, 120),
            (130, 140),
            (200, 170),
            (205, 220),
            (140, 250),
            (75, 225),
        ]
    ],
}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def build(out: Path, data_dir: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    index: list[dict] = []
    with np.load(data_dir / "mnist.npz", allow_pickle=False) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    for digit, i in MNIST_PICKS.items():
        assert int(y_test[i]) == digit, (i, int(y_test[i]), digit)
        name = f"mnist_test_{i:04d}.png"
        (out / name).write_bytes(_png(Image.fromarray(x_test[i])))
        index.append({"name": name, "label": str(digit), "description": f"MNIST test image #{i}"})

    fonts = {f.name: f for f in find_fonts()}
    renders = [
        ("photo", 3, "DejaVuSerif.ttf", "photo-like: pen on tinted, unevenly lit paper, JPEG"),
        ("photo", 8, "DejaVuSans-Bold.ttf", "photo-like: bold ink, off-centre, shadow, JPEG"),
        ("print", 5, "LiberationSerif-Bold.ttf", "printed serif digit, off-centre"),
        ("thick", 2, "DejaVuSans-Bold.ttf", "thick white strokes on black, like a canvas"),
        ("chalk", 6, "DejaVuSerif-Bold.ttf", "light chalk on a dark board (inverted polarity)"),
        ("ruled", 7, "DejaVuSans.ttf", "ink on ruled notebook paper, JPEG"),
    ]
    rng = random.Random(7)
    for kind, digit, font_name, description in renders:
        font = fonts.get(font_name) or next(iter(fonts.values()), None)
        if font is None:
            continue
        sample = render(digit, kind, font, rng)
        name = f"{kind}_{digit}.{sample.ext}"
        (out / name).write_bytes(sample.data)
        index.append({"name": name, "label": str(digit), "description": description})

    for digit, strokes in DRAWINGS.items():
        canvas = Image.new("L", (280, 280), 255)
        draw = ImageDraw.Draw(canvas)
        for line in strokes:
            draw.line(line, fill=0, width=22, joint="curve")
            for x, y in (line[0], line[-1]):
                draw.ellipse((x - 11, y - 11, x + 11, y + 11), fill=0)
        name = f"drawn_{digit}.png"
        (out / name).write_bytes(_png(canvas))
        index.append(
            {"name": name, "label": str(digit), "description": "drawn with thick strokes, black on white"}
        )
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild models/vision/examples/")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding mnist.npz")
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR)
    args = parser.parse_args(argv)
    index = build(args.out, args.data_dir)
    print(f"wrote {len(index)} examples to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
