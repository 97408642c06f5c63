"""MNIST-style preprocessing: polarity, background, crop, 20×20 fit, centre of mass, blank detection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from models.vision import EXAMPLES_DIR, PreprocessConfig
from models.vision.preprocess import NoInkFound, preprocess_gray

SEVEN = np.asarray(Image.open(EXAMPLES_DIR / "mnist_test_0000.png"), dtype=np.float32) / 255  # ink bright


def _on_paper(digit: np.ndarray, size=(300, 240), at=(40, 150), scale=5) -> np.ndarray:
    """Put a dark version of `digit` on light paper at pixel offset `at` (row, col)."""
    big = (
        np.asarray(
            Image.fromarray((digit * 255).astype(np.uint8)).resize((28 * scale, 28 * scale)), np.float32
        )
        / 255
    )
    paper = np.full(size, 0.9, dtype=np.float32)
    r, c = at
    region = paper[r : r + big.shape[0], c : c + big.shape[1]]
    region -= 0.8 * big[: region.shape[0], : region.shape[1]]
    return paper


def test_output_is_mnist_shaped_and_centred():
    out = preprocess_gray(_on_paper(SEVEN)).image
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1
    rows, cols = np.flatnonzero(out.max(1) > 0.05), np.flatnonzero(out.max(0) > 0.05)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 22  # fitted into the 20×20 box (+ blur)


def test_mnist_digits_pass_through_almost_unchanged():
    out = preprocess_gray(SEVEN)
    assert not out.inverted
    assert np.abs(out.image - SEVEN).mean() < 0.12


def test_position_and_size_do_not_matter():
    a = preprocess_gray(_on_paper(SEVEN, at=(10, 10), scale=3)).image
    b = preprocess_gray(_on_paper(SEVEN, at=(120, 80), scale=6)).image
    assert np.abs(a - b).mean() < 0.06


def test_polarity_is_detected_both_ways():
    dark_ink = preprocess_gray(_on_paper(SEVEN))
    light_ink = preprocess_gray(1 - _on_paper(SEVEN))
    assert dark_ink.inverted and not light_ink.inverted
    assert np.abs(dark_ink.image - light_ink.image).mean() < 0.02


def test_uneven_lighting_is_removed():
    paper = _on_paper(SEVEN)
    h, w = paper.shape
    shade = (
        np.linspace(-0.35, 0.05, w, dtype=np.float32)[None, :]
        + np.linspace(0, -0.1, h, dtype=np.float32)[:, None]
    )
    lit = np.clip(paper + shade, 0, 1)
    clean = preprocess_gray(paper).image
    shaded = preprocess_gray(lit).image
    assert np.abs(clean - shaded).mean() < 0.08


def test_specks_are_ignored():
    paper = _on_paper(SEVEN)
    paper[5:7, 5:7] = 0.1  # a dust speck far from the digit
    paper[280:282, 220:222] = 0.1
    with_specks = preprocess_gray(paper).image
    assert np.abs(with_specks - preprocess_gray(_on_paper(SEVEN)).image).mean() < 0.02


@pytest.mark.parametrize(
    "image",
    [
        np.ones((100, 100), np.float32),
        np.zeros((100, 100), np.float32),
        np.full((50, 80), 0.5, np.float32),
        np.clip(np.random.default_rng(0).normal(0.8, 0.02, (120, 120)), 0, 1).astype(np.float32),
    ],
    ids=["white", "black", "grey", "paper-grain"],
)
def test_blank_images_raise(image):
    with pytest.raises(NoInkFound, match="no digit found"):
        preprocess_gray(image)


def test_a_single_dot_is_not_a_digit():
    image = np.ones((200, 200), np.float32)
    image[100:102, 100:102] = 0
    with pytest.raises(NoInkFound):
        preprocess_gray(image)


def test_hairline_strokes_are_thickened_and_fat_ones_thinned():
    cfg = PreprocessConfig()
    hair = np.zeros((400, 400), np.float32)
    hair[50:350, 200] = 1  # a 1-px "1", 300 px tall → 0.07 px after scaling
    thin = preprocess_gray(hair, cfg)
    assert thin.stroke_px < cfg.target_stroke[0]
    assert thin.image.max() > 0.9 and (thin.image > 0.5).sum() >= 20  # still a visible stroke
    fat = np.zeros((280, 280), np.float32)
    fat[40:240, 60:220] = 0
    fat[40:240, 60:130] = 1  # a very bold bar
    bold = preprocess_gray(fat, cfg)
    assert bold.stroke_px > cfg.target_stroke[1]
    assert (bold.image > 0.5).mean() < 0.5


@settings(max_examples=40, deadline=None)
@given(
    st.integers(8, 300),
    st.integers(8, 300),
    st.floats(0, 1),
    st.floats(0, 0.5),
    st.integers(0, 2**32 - 1),
)
def test_any_grey_image_gives_a_valid_result_or_no_ink(h, w, level, noise, seed):
    rng = np.random.default_rng(seed)
    image = np.clip(level + rng.normal(0, noise, (h, w)), 0, 1).astype(np.float32)
    if rng.random() < 0.5:
        r, c = rng.integers(0, h), rng.integers(0, w)
        image[r : r + h // 3, c : c + 3] = 1 - level
    try:
        out = preprocess_gray(image)
    except NoInkFound:
        return
    assert out.image.shape == (28, 28) and np.isfinite(out.image).all()
    assert 0 <= out.image.min() and out.image.max() <= 1


def test_ruled_paper_lines_are_erased():
    paper = _on_paper(SEVEN)
    clean = preprocess_gray(paper).image
    ruled = paper.copy()
    for y in range(10, ruled.shape[0], 30):
        ruled[y : y + 2, :] -= 0.3  # notebook rules, some crossing the digit
    ruled[:, 20:22] -= 0.3  # and a margin line
    out = preprocess_gray(np.clip(ruled, 0, 1)).image
    assert np.abs(out - clean).mean() < 0.05


def test_a_bar_along_the_edge_of_a_tight_crop_is_kept():
    seven = np.ones((140, 100), np.float32)
    seven[0:14, :] = 0  # the bar of a 7, touching the top, left and right edges
    for r in range(14, 140):  # the stem, slanting down to the left
        c = int(86 - (r - 14) * 0.45)
        seven[r, c : c + 14] = 0
    out = preprocess_gray(seven).image
    top = np.flatnonzero(out.max(1) > 0.5)[0]
    assert (out[top : top + 2] > 0.5).any(0).sum() >= 10  # the first ink rows are the wide bar
