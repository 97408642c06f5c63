"""Vision model: architecture, augmentation, a tiny training run, and the committed weights on MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.vision import MNIST_CNN, DigitBundle, DigitCNN
from models.vision import cli as vision_cli
from models.vision.augment import AugmentConfig, augment_batch, dilate, erode
from models.vision.count import DIGIT_COUNT, ONE, SEVERAL, CountDataConfig, compose_cutout, compose_dataset
from models.vision.train import TrainConfig, classification_metrics, predict_tensor, to_tensor, train
from tests.conftest import dataset_dir


def _toy_data(n: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Real MNIST when present, else simple synthetic bars (label = bar position) that a CNN can learn."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 4:24, 2 + 2 * label : 4 + 2 * label] = 255
    return {"x_train": x, "y_train": y, "x_test": x[:64], "y_test": y[:64]}


def test_architecture_is_the_classic_cnn():
    model = DigitCNN()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (3, 3)), (64, (3, 3)), (64, (3, 3))]
    assert [d.out_features for d in dense] == [64, 10]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 2
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    assert model.forward_features(torch.rand(2, 1, 28, 28)).shape == (2, 64, 7, 7)


def test_committed_weights_load_strictly():
    state = load_file(str(MNIST_CNN.weights))
    assert set(state) == set(DigitCNN().state_dict())
    model = MNIST_CNN.get_model("cpu")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert MNIST_CNN.weights.stat().st_size < 2_000_000


def test_augmentation_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(16, 1, 28, 28) ** 4
    a = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(3))
    b = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    assert not torch.allclose(a, x)


def test_dilate_and_erode_change_stroke_width():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 10:18, 13:15] = 1
    assert dilate(x, 3).sum() > x.sum() > erode(x, 2).sum()


def test_metrics_are_consistent():
    y_true = np.array([0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 2, 2, 2, 1])
    m = classification_metrics(y_true, y_pred, ("0", "1", "2"))
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert np.array(m["confusion_matrix"]).sum() == 6 and m["confusion_matrix"][2] == [0, 1, 2]
    assert m["per_class"]["0"]["recall"] == 1.0


def test_tiny_training_run_learns_and_saves(tmp_path):
    data = _toy_data()
    out = tmp_path / "tiny.safetensors"
    cfg = TrainConfig(epochs=3, batch_size=32, max_lr=3e-3, seed=0, limit=256, augment=False, threads=1)
    summary = train(data, out, cfg)
    assert out.is_file() and summary["samples"] == 256 and len(summary["history"]) == 3
    assert summary["history"][-1]["loss"] < summary["history"][0]["loss"]
    model = DigitBundle(name="tiny", weights=out).get_model("cpu")
    probs = predict_tensor(model, to_tensor(data["x_test"]))
    accuracy = float((probs.argmax(1).numpy() == data["y_test"]).mean())
    assert accuracy > 0.5  # chance is 0.1


def test_tiny_training_run_with_augmentation_on_real_mnist(tmp_path):
    folder = dataset_dir("mnist", "mnist.npz")
    with np.load(folder / "mnist.npz") as npz:
        data = {k: npz[k][:300] for k in ("x_train", "y_train", "x_test", "y_test")}
    out = tmp_path / "aug.safetensors"
    summary = train(data, out, TrainConfig(epochs=1, batch_size=64, limit=300, threads=1))
    assert out.is_file() and np.isfinite(summary["history"][0]["loss"])


@pytest.mark.slow
def test_committed_weights_give_the_committed_mnist_test_accuracy():
    folder = dataset_dir("mnist", "mnist.npz")
    with np.load(folder / "mnist.npz") as npz:
        x, y = npz["x_test"], npz["y_test"]
    probs = predict_tensor(MNIST_CNN.get_model("cpu"), to_tensor(x))
    accuracy = float((probs.argmax(1).numpy() == y).mean())
    # the same weights on the same 10,000 digits: metrics.json's figure, less one digit for float noise
    measured = json.loads((MNIST_CNN.weights.parent / "metrics.json").read_text())["accuracy"]
    assert accuracy >= measured - 1e-4, (accuracy, measured)


def test_metrics_json_matches_the_card():
    metrics = json.loads((MNIST_CNN.weights.parent / "metrics.json").read_text())
    assert metrics["task"] == "vision" and metrics["accuracy"] >= 0.993
    assert metrics["labels"] == list(MNIST_CNN.labels)
    assert np.array(metrics["confusion_matrix"]).shape == (10, 10)
    assert np.array(metrics["confusion_matrix"]).sum() == 10000


# ---- the counting network (one digit, several, part of one) ---------------------------------------


def test_counting_network_is_the_same_cnn_with_three_answers():
    state = load_file(str(DIGIT_COUNT.weights))
    assert set(state) == set(DIGIT_COUNT.build().state_dict())
    model = DIGIT_COUNT.get_model("cpu")
    assert model(torch.rand(4, 1, 28, 28)).shape == (4, 3)
    assert DIGIT_COUNT.labels == ("one digit", "several digits", "part of a digit")
    assert DIGIT_COUNT.weights.stat().st_size < 2_000_000


def test_cutouts_are_seeded_and_shaped_like_the_readers_crops():
    digits = _toy_data(64)["x_train"]
    a = compose_dataset(digits, CountDataConfig(samples=30, seed=4))
    b = compose_dataset(digits, CountDataConfig(samples=30, seed=4))
    assert np.array_equal(a["x_train"], b["x_train"]) and np.array_equal(a["y_train"], b["y_train"])
    assert a["x_train"].shape == (30, 28, 28) and a["x_train"].dtype == np.uint8
    assert np.bincount(a["y_train"]).tolist() == [10, 10, 10]
    assert all(image.max() > 100 for image in a["x_train"])  # every cut-out holds ink
    rng = np.random.default_rng(0)
    several = [compose_cutout(digits, SEVERAL, rng, CountDataConfig()) for _ in range(20)]
    one = [compose_cutout(digits, ONE, rng, CountDataConfig()) for _ in range(20)]
    # Two digits fitted into the same 20×20 box are smaller each: their ink spreads over more columns.
    assert np.mean([(s.max(0) > 0.3).sum() for s in several]) > np.mean([(o.max(0) > 0.3).sum() for o in one])


def test_tiny_counting_run_through_the_cli_writes_weights_and_record(tmp_path):
    folder = dataset_dir("mnist", "mnist.npz")
    out = tmp_path / "count.safetensors"
    code = vision_cli.main(
        "train",
        ["--data-dir", str(folder), "--model", "count", "--limit", "300", "--count-samples", "300",
         "--count-epochs", "1", "--count-out", str(out)],
    )  # fmt: skip
    assert code == 0 and out.is_file()
    record = json.loads(out.with_suffix(".train.json").read_text())
    assert record["data"]["per_class"] == {"one digit": 100, "several digits": 100, "part of a digit": 100}
    assert 0 <= record["validation"]["accuracy"] <= 1 and record["validation"]["n"] == 3000


def test_committed_counting_record_matches_the_committed_weights():
    record = json.loads(DIGIT_COUNT.weights.with_suffix(".train.json").read_text())
    assert record["command"].startswith("python -m models train vision")
    assert record["data"]["samples"] == CountDataConfig().samples
    assert record["validation"]["accuracy"] >= 0.95
