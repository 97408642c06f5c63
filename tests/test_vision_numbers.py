"""Multi-digit reading: segmentation cases, the result shape, and single digits left as they were."""

from __future__ import annotations

import io
import json
import math
import random
from collections import defaultdict

import numpy as np
import pytest
import torch
from PIL import Image

from models.vision import EXAMPLES_DIR, MNIST_CNN
from models.vision.count import HELD_OUT_DIGITS
from models.vision.number_images import KINDS, _photograph, canvas, compose_handwritten, generate, load_pool
from models.vision.photo_digits import find_fonts
from models.vision.preprocess import preprocess_gray
from models.vision.segment import SegmentConfig, segment_digits
from services.image_io import decode_image
from services.vision import MAX_BATCH, MAX_DIGITS, best_strings, example_inputs, load_service
from tests.conftest import REPO_ROOT, dataset_dir

MNIST_EXAMPLES = {"7": "mnist_test_0000.png", "2": "mnist_test_0001.png", "1": "mnist_test_0002.png",
                  "0": "mnist_test_0003.png", "4": "mnist_test_0004.png", "9": "mnist_test_0007.png"}  # fmt: skip


@pytest.fixture(scope="module")
def service():
    return load_service()


def _digit(label: str) -> np.ndarray:
    return np.asarray(Image.open(EXAMPLES_DIR / MNIST_EXAMPLES[label]).convert("L"))


def _paper(mask: np.ndarray, pad: int = 30, angle: float = 0.0) -> bytes:
    """Dark ink on white paper, optionally tilted, as a PNG."""
    ink = Image.fromarray((np.clip(mask, 0, 1) * 255).astype(np.uint8))
    if angle:
        ink = ink.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    ink = np.pad(np.asarray(ink, dtype=np.float32) / 255, pad)
    buffer = io.BytesIO()
    Image.fromarray(((1 - 0.9 * ink) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _row(labels: str, gaps: list[int] | None = None, height: int = 28 * 3) -> np.ndarray:
    """MNIST example digits side by side with the given gaps (px at `height`), ink = 1."""
    pieces = []
    for label in labels:
        digit = Image.fromarray(_digit(label)).resize((height, height), Image.Resampling.BICUBIC)
        array = np.asarray(digit, dtype=np.float32) / 255
        cols = np.flatnonzero(array.max(0) > 0.1)
        pieces.append(array[:, cols[0] : cols[-1] + 1])
    gaps = gaps if gaps is not None else [height // 4] * len(labels)
    out = pieces[0]
    for piece, gap in zip(pieces[1:], gaps[1:], strict=False):
        if gap >= 0:
            out = np.hstack([out, np.zeros((height, gap), np.float32), piece])
        else:  # overlap: the strokes may meet
            joined = np.zeros((height, out.shape[1] + piece.shape[1] + gap), np.float32)
            joined[:, : out.shape[1]] = out
            np.maximum(joined[:, -piece.shape[1] :], piece, out=joined[:, -piece.shape[1] :])
            out = joined
    return out


def _segment_with(service, payload: bytes, **config):
    """The service's reader (both networks) with some of its thresholds changed."""
    return segment_digits(
        decode_image(payload).gray,
        service.bundle.preprocess,
        SegmentConfig(**config),
        service._probabilities,
        service._counts,
    )


# ---- single digits keep their answers ----------------------------------------------------------


def test_every_bundled_single_digit_keeps_the_single_digit_answer(service):
    """Each example reads as one digit, with exactly the probabilities of the one-digit pipeline."""
    model = MNIST_CNN.get_model("cpu")
    singles = [e for e in example_inputs() if len(e["label"]) == 1]
    assert len(singles) >= 14
    for example in singles:
        data = open(example["path"], "rb").read()
        result = service.predict(data)
        image = preprocess_gray(decode_image(data).gray, MNIST_CNN.preprocess).image
        with torch.inference_mode():
            probs = torch.softmax(model(torch.from_numpy(image)[None, None]), 1)[0].double().numpy()
        assert len(result["digits"]) == 1, (example["name"], result["label"])
        assert result["label"] == example["label"] == str(int(probs.argmax())), example["name"]
        assert result["confidence"] == pytest.approx(float(probs.max()), abs=1e-4)


# ---- the number and its digits ----------------------------------------------------------------


def test_the_bundled_number_photos(service):
    numbers = [e for e in example_inputs() if len(e["label"]) > 1]
    assert {e["label"] for e in numbers} >= {"4233", "44430"}  # the issue's own two examples
    for example in numbers:
        assert service.predict(open(example["path"], "rb").read())["label"] == example["label"]


def test_a_number_is_read_left_to_right_with_boxes(service):
    data = _paper(_row("7210"))
    result = service.predict(data, top_k=3)
    assert result["label"] == "7210"
    assert [d["label"] for d in result["digits"]] == list("7210")
    lefts = [d["box"][0] for d in result["digits"]]
    assert lefts == sorted(lefts)
    width, height = result["size"]
    for digit in result["digits"]:
        x0, y0, x1, y1 = digit["box"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert digit["top_k"][0]["label"] == digit["label"] and len(digit["top_k"]) == 3
    product = float(np.prod([d["confidence"] for d in result["digits"]]))
    assert result["confidence"] == pytest.approx(product, abs=2e-3)
    assert result["top_k"][0] == {"label": "7210", "score": result["confidence"]}
    assert all(len(row["label"]) == 4 for row in result["top_k"])


def test_uneven_spacing_and_twelve_digits(service):
    labels = "721049721049"
    gaps = [0, 5, 40, 12, 60, 8, 25, 6, 30, 14, 50, 10]
    result = service.predict(_paper(_row(labels, gaps)))
    assert result["label"] == labels and len(result["digits"]) == MAX_DIGITS


@pytest.mark.parametrize("angle", [-10, -6, 6, 10])
def test_a_tilted_number_is_straightened(service, angle):
    result = service.predict(_paper(_row("4790"), angle=angle))
    assert result["label"] == "4790", (angle, result["notes"])
    assert any("tilted" in note for note in result["notes"])


def test_touching_digits_are_split(service):
    result = service.predict(_paper(_row("7204", gaps=[0, -6, 10, -4])))
    assert result["label"] == "7204"


@pytest.mark.parametrize(
    ("label", "overlap"),
    [
        ("210", 4),  # the squeezed "10" reads as a 0 at 0.6-0.99: doubt enough to try the cut
        ("104", 8),  # evenly spaced cuts land inside the 0; the valleys beside the 1 do not
        ("01", 8),
    ],
)
def test_touching_pairs_with_a_one_are_split(service, label, overlap):
    """Neighbours pushed into each other by `overlap` px (at 84 px high), so the strokes meet."""
    assert service.predict(_paper(_row(label, gaps=[-overlap] * len(label))))["label"] == label


@pytest.mark.parametrize(
    ("label", "overlap"),
    [("41", 6), ("12", 6), ("17", 6), ("90", 12), ("07", 12), ("94", 18)],
)
def test_pairs_the_cnn_reads_as_one_digit_are_split_by_the_counting_network(service, label, overlap):
    """Pushed into each other, each pair reads as one sure digit to the CNN ("41" as 4, "90" as 8);
    the counting network sees several digits, and its cut gives two pieces that are one digit each."""
    payload = _paper(_row(label, gaps=[0, -overlap]))
    assert service.predict(payload)["label"] == label
    without_counting = segment_digits(
        decode_image(payload).gray, service.bundle.preprocess, SegmentConfig(), service._probabilities
    )
    assert len(without_counting.digits) == 1  # what the reader did before it could ask


@pytest.mark.parametrize(("label", "overlap"), [("214", 6), ("417", 6), ("421", 6), ("419", 9)])
def test_a_piece_still_holding_two_digits_is_cut_again(service, label, overlap):
    """Three digits pushed together are too wide for one: the first cut leaves a "1" stuck to a
    neighbour, which the CNN reads as one sure digit and the counting network as several."""
    payload = _paper(_row(label, gaps=[0, -overlap, -overlap]))
    assert service.predict(payload)["label"] == label
    one_round = _segment_with(service, payload, split_rounds=1)
    assert len(one_round.digits) == 2


@pytest.mark.parametrize(("label", "overlap"), [("14", 12), ("10", 14)])
def test_a_one_pressed_into_its_neighbour_is_cut_off_when_the_pair_is_surely_two(service, label, overlap):
    """The "1" cut off is a bare stroke, which the counting network also takes for part of a digit;
    that doubt must not keep a pair it is sure of together (the 1 would vanish into the 4 or 0)."""
    payload = _paper(_row(label, gaps=[0, -overlap]))
    assert service.predict(payload)["label"] == label
    vetoed = _segment_with(service, payload, sure_several=1.01)
    assert len(vetoed.digits) == 1


@pytest.mark.parametrize("label", ["2", "0", "7"])
def test_a_digit_written_wide_stays_one_when_the_counting_network_is_sure(service, label):
    """Drawn 1.8 times as wide as usual, the digit is too wide for one by its shape alone; the
    counting network is sure it is one digit, so it is not cut into two half-digits."""
    digit = _row(label)
    wide = Image.fromarray(digit).resize(
        (int(digit.shape[1] * 1.8), digit.shape[0]), Image.Resampling.BICUBIC
    )
    row = np.hstack([_row("7"), np.zeros((digit.shape[0], 20), np.float32), np.asarray(wide)])
    payload = _paper(row)
    assert service.predict(payload)["label"] == "7" + label
    by_shape_alone = _segment_with(service, payload, sure_one=1.01)
    assert len(by_shape_alone.digits) == 3


def _shadowed(mask: np.ndarray, depth: float, side: str) -> bytes:
    """Dark ink on white paper with a soft shadow of `depth` falling in from one edge, as a PNG."""
    ink = np.pad(mask, 30)
    width = ink.shape[1]
    edge = 0 if side == "left" else width
    shadow = depth * np.exp(-(((np.arange(width) - edge) / (0.15 * width)) ** 2))
    paper = (1 - shadow[None, :]) * (1 - 0.9 * ink)
    buffer = io.BytesIO()
    Image.fromarray((paper * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("label", "depth", "side"), [("42", 0.3, "left"), ("42", 0.3, "right"),
                                                      ("2190", 0.4, "left"), ("2190", 0.4, "right")])  # fmt: skip
def test_a_shadow_at_the_edge_is_not_read_as_a_digit(service, label, depth, side):
    payload = _shadowed(_row(label), depth, side)
    assert service.predict(payload)["label"] == label
    kept_faint = _segment_with(service, payload, faint_ink=0.0)
    assert len(kept_faint.digits) == len(label) + 1  # the shadow was an extra "1" before


def test_a_digit_cut_in_two_is_joined_again(service):
    """Two strokes that are each part of a digit for the counting network, close together, become the
    one digit the CNN reads in their union (a narrow 0 drawn as two arcs was read as "17")."""
    zero = _row("0")
    middle = zero.shape[1] // 2
    split = np.hstack([zero[:, :middle], np.zeros((zero.shape[0], 3), np.float32), zero[:, middle:]])
    row = np.hstack([_row("7"), np.zeros((zero.shape[0], 20), np.float32), split])
    assert service.predict(_paper(row))["label"] == "70"


def test_a_broken_stroke_stays_one_digit(service):
    row = _row("74")
    row[28:31, :] = 0  # a horizontal gap cuts the 7's stem and the 4 in two
    assert service.predict(_paper(row))["label"] == "74"


# A "1" beside another digit, apart from it: MNIST **test** digits (indices into x_test) composed by the
# generator with its own gaps (seeded) and photographed. Before the fix the pair, narrower than one digit
# is tall, was read as one digit ("19" → "9", "11" → "1"). Listed here because they failed then.
SEPARATE_ONES = [("19", (4191, 7360), 40), ("41", (3700, 4147), 185), ("14", (3639, 2901), 266),
                 ("61", (7415, 4871), 23), ("11", (1867, 8636), 0), ("11", (4138, 850), 224),
                 # ... and three whose CNN readings of the parts were too unsure to keep them apart,
                 # until the counting network's "several digits" for the pair was heard:
                 ("41", (1242, 39), 8), ("13", (768, 2953), 352), ("61", (8884, 1004), 340)]  # fmt: skip


def test_a_separate_one_is_not_merged_into_the_next_digit(service):
    with np.load(dataset_dir("mnist", "mnist.npz") / "mnist.npz") as data:
        images, labels = data["x_test"], data["y_test"]
    for label, indices, seed in SEPARATE_ONES:
        assert "".join(str(labels[i]) for i in indices) == label
        mask = compose_handwritten([images[i] for i in indices], random.Random(seed), height=60)
        inked = np.flatnonzero(mask.max(0) > 0.05)
        assert np.diff(inked).max() > 1, label  # an empty column between them: the 1 stands apart
        result = service.predict(_photograph(mask, random.Random(seed)))
        assert result["label"] == label, (label, indices, result["label"])
        assert len(result["digits"]) == 2


def test_specks_dots_and_an_underline_are_ignored(service):
    row = np.pad(_row("2190"), 30)
    rng = np.random.default_rng(0)
    for y, x in zip(rng.integers(0, row.shape[0], 12), rng.integers(0, row.shape[1], 12), strict=True):
        row[y, x] = 1  # single-pixel specks
    height = row.shape[0]
    row[height - 22 : height - 19, 20:-20] = 1  # an underline across the whole number
    row[height // 2 + 20 : height // 2 + 26, row.shape[1] // 2 - 3 : row.shape[1] // 2 + 3] = 1  # a dot
    assert service.predict(_paper(row))["label"] == "2190"


def test_canvas_drawings_of_several_digits(service):
    sample = canvas(random.Random(5))
    rgba = np.asarray(Image.open(io.BytesIO(sample.data)))
    assert rgba.shape[2] == 4 and rgba[..., 3].min() == 0  # transparent, as the canvas returns it
    assert service.predict_array(rgba)["label"] == sample.label


def test_digits_segmentation_has_not_read_go_through_one_forward(service, monkeypatch):
    model_calls: list[tuple[str, int]] = []  # (stage, batch size)
    stage = ["preprocess"]
    unread_per_forward = []
    original_model_forward = type(service.model).forward
    original_forward = type(service)._forward

    def counting(self, x):
        model_calls.append((stage[0], x.shape[0]))
        return original_model_forward(self, x)

    def forwarding(self, prepared, **options):
        stage[0] = "forward"
        unread_per_forward.append(sum(row is None for p in prepared for row in p.known_probs))
        return original_forward(self, prepared, **options)

    monkeypatch.setattr(type(service.model), "forward", counting)
    monkeypatch.setattr(type(service), "_forward", forwarding)
    payloads = [_paper(_row("72")), _paper(_row("104")), _paper(_row("9"))]
    results = service.predict_batch(payloads)
    assert [r["label"] for r in results] == ["72", "104", "9"]
    # Segmentation hands on the readings it made while scoring candidates; every other digit of
    # every image is read in one classifying pass, and none twice.
    (unread,) = unread_per_forward
    assert [size for where, size in model_calls if where == "forward"] == ([unread] if unread else [])


def test_segmentation_readings_match_a_fresh_forward(service):
    """Readings reused from segmentation are the ones a separate forward pass would give."""
    photo = EXAMPLES_DIR / "number_photo_4233.jpg"
    gray = decode_image(photo.read_bytes()).gray
    found = segment_digits(gray, service.bundle.preprocess, SegmentConfig(), service._probabilities)
    read = [(d.image, d.probs) for d in found.digits if d.probs is not None]
    # One of its digits is wide enough to ask the CNN about: the others ride along in that batch.
    assert len(read) == len(found.digits) == 4
    fresh = service._probabilities(np.stack([image for image, _ in read]))
    np.testing.assert_allclose(np.stack([probs for _, probs in read]), fresh, atol=1e-5)


def test_best_strings_are_the_most_probable_numbers():
    probs = np.array([[0.1, 0.9, 0, 0, 0, 0, 0, 0, 0, 0], [0.6, 0.4, 0, 0, 0, 0, 0, 0, 0, 0]])
    labels = [str(d) for d in range(10)]
    ranked = best_strings(probs, labels, 3)
    assert [text for text, _ in ranked] == ["10", "11", "00"]
    assert ranked[0][1] == pytest.approx(0.54)


# ---- the generated test numbers ---------------------------------------------------------------

PER_KIND = 48  # a quick sample here; the full measurement (200 per kind) is in metrics.json `numbers`
VISION_METRICS = REPO_ROOT / "models" / "vision" / "metrics.json"


def floor_under(measured: float, n: int) -> float:
    """Just under a rate measured on the full sample: two binomial standard errors of an n-number
    sample below it, and at least one miss, so that the test fails on a real drop and not on which
    numbers the smaller sample happened to draw."""
    return measured - max(2 * math.sqrt(measured * (1 - measured) / n), 1 / n)


def test_the_held_out_pool_is_the_training_digits_the_counting_network_never_saw():
    folder = dataset_dir("mnist", "mnist.npz")
    held_out, train = load_pool(folder, "held-out"), load_pool(folder, "train")
    assert sum(len(images) for images in held_out.values()) == HELD_OUT_DIGITS
    for digit, images in held_out.items():
        assert np.array_equal(images, train[digit][-len(images) :])  # the last ones, in order
    with pytest.raises(ValueError, match="unknown split"):
        load_pool(folder, "validation")


@pytest.mark.slow
def test_generated_numbers_are_read_exactly():
    folder = dataset_dir("mnist", "mnist.npz")
    if not find_fonts():
        pytest.skip("no TrueType fonts for the printed numbers")
    samples = generate(PER_KIND, seed=11, pool=load_pool(folder, "test"))
    service, payloads = load_service(), [s.data for s in samples]
    results = []
    for start in range(0, len(payloads), MAX_BATCH):
        results += service.predict_batch(payloads[start : start + MAX_BATCH])
    hits: dict[str, list[bool]] = defaultdict(list)
    for sample, result in zip(samples, results, strict=True):
        hits[sample.kind].append(result.get("label") == sample.label)
    exact = {kind: sum(v) / len(v) for kind, v in hits.items()}
    print("exact match per kind:", exact)
    assert set(exact) == set(KINDS)
    measured = json.loads(VISION_METRICS.read_text(encoding="utf-8"))["numbers"]
    floors = {kind: floor_under(measured[kind]["exact_match"], PER_KIND) for kind in KINDS}
    assert all(exact[kind] >= floors[kind] for kind in KINDS), {"exact": exact, "floors": floors}


def test_compose_handwritten_keeps_every_digit():
    rng = random.Random(0)
    mask = compose_handwritten([_digit(c) for c in "7210"], rng, height=60)
    assert mask.max() > 0.9 and mask.shape[1] > 2 * mask.shape[0]
