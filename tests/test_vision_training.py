"""Vision model: architecture, augmentation, a tiny training run, and the committed weights on MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.vision import MNIST_CNN, DigitBundle, DigitCNN
from models.vision.augment import AugmentConfig, augment_batch, dilate, erode
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
def test_committed_weights_reach_99_percent_on_mnist_test():
    folder = dataset_dir("mnist", "mnist.npz")
    with np.load(folder / "mnist.npz") as npz:
        x, y = npz["x_test"], npz["y_test"]
    probs = predict_tensor(MNIST_CNN.get_model("cpu"), to_tensor(x))
    accuracy = float((probs.argmax(1).numpy() == y).mean())
    assert accuracy >= 0.99, accuracy


def test_metrics_json_matches_the_card():
    metrics = json.loads((MNIST_CNN.weights.parent / "metrics.json").read_text())
    assert metrics["task"] == "vision" and metrics["accuracy"] >= 0.993
    assert metrics["labels"] == list(MNIST_CNN.labels)
    assert np.array(metrics["confusion_matrix"]).shape == (10, 10)
    assert np.array(metrics["confusion_matrix"]).sum() == 10000
