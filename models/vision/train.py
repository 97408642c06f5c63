"""Training and evaluation of the digit CNN on MNIST.

Training runs on whole batches already on the device: the 60k uint8 images are one tensor, each
step slices a batch, augments it on the fly (models/vision/augment.py) and takes an AdamW step under
a one-cycle learning-rate schedule. No data loader, no worker processes: about 10 minutes for the
default 6 epochs on one CPU thread, seconds on a GPU.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from models.runtime import inference_context, select_device, set_seed
from models.vision import MNIST_CNN, DigitBundle, DigitCNN
from models.vision.augment import AugmentConfig, augment_batch

logger = logging.getLogger(__name__)

# The canonical Keras copy of MNIST (same npz layout as ../shared/data/mnist/mnist.npz).
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_FILE = "mnist.npz"


@dataclass
class TrainConfig:
    epochs: int = 6
    batch_size: int = 128
    max_lr: float = 3e-3  # peak of the one-cycle schedule
    weight_decay: float = 1e-4
    seed: int = 0
    limit: int | None = None  # train on the first N images only (tests use a few hundred)
    threads: int = 1  # CPU threads; the shared build machine has two cores for four trainers
    augment: bool = True


def load_mnist(data_dir: str | Path | None) -> dict[str, np.ndarray]:
    """MNIST as uint8 arrays from DIR/mnist.npz; without a dir, download the canonical copy."""
    if data_dir is None:
        cache = Path.home() / ".cache" / "demo-app" / MNIST_FILE
        if not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            logger.info("downloading MNIST from %s", MNIST_URL)
            partial = cache.with_suffix(".part")
            try:
                urllib.request.urlretrieve(MNIST_URL, partial)  # noqa: S310 - fixed https URL
                partial.replace(cache)  # only a complete download gets the real name
            except OSError as err:
                raise SystemExit(
                    f"could not download MNIST ({err}); pass --data-dir pointing at a folder with {MNIST_FILE}"
                ) from err
        path = cache
    else:
        path = Path(data_dir) / MNIST_FILE
        if not path.is_file():
            raise SystemExit(
                f"{path} not found; --data-dir must hold {MNIST_FILE} (keys x_train, y_train, ...)"
            )
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in ("x_train", "y_train", "x_test", "y_test")}


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) uint8 → (N, 1, 28, 28) float in [0, 1]."""
    return torch.from_numpy(images).float().div_(255).unsqueeze(1)


def train(
    data: dict[str, np.ndarray],
    out_path: Path,
    cfg: TrainConfig,
    bundle: DigitBundle = MNIST_CNN,
    dataset: str = "MNIST",
) -> dict:
    """Train from scratch, save safetensors to `out_path`, return a summary dict."""
    set_seed(cfg.seed)
    device = select_device()
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    x = to_tensor(data["x_train"])
    y = torch.from_numpy(data["y_train"].astype(np.int64))
    if cfg.limit:
        x, y = x[: cfg.limit], y[: cfg.limit]
    x, y = x.to(device), y.to(device)
    n = len(x)
    model = bundle.build().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.max_lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, (n + cfg.batch_size - 1) // cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    warmup = max(1, int(0.2 * total_steps))

    def one_cycle(step: int) -> float:  # linear warm-up to max_lr, then cosine decay to ~0
        if step < warmup:
            return 0.04 + 0.96 * step / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.002 + 0.998 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    aug_cfg = AugmentConfig()
    started = time.perf_counter()
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=generator, device=device)
        total_loss, correct = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for step in bar:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb, yb = x[idx], y[idx]
            if cfg.augment:
                xb = augment_batch(xb, aug_cfg, generator)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
        record = {"epoch": epoch + 1, "loss": total_loss / n, "train_acc_augmented": correct / n}
        history.append(record)
        logger.info(
            "epoch %d/%d loss %.4f acc(augmented) %.4f (%.0f s)",
            epoch + 1,
            cfg.epochs,
            record["loss"],
            record["train_acc_augmented"],
            time.perf_counter() - started,
        )
    model.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(
        state,
        str(out_path),
        metadata={"arch": "DigitCNN", "dataset": dataset, "config": json.dumps(asdict(cfg))},
    )
    return {
        "train_seconds": round(time.perf_counter() - started, 1),
        "device": str(device),
        "samples": n,
        "history": history,
        "weights": str(out_path),
    }


@torch.no_grad()
def predict_tensor(model: DigitCNN, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] → (N, 10) probabilities, on CPU."""
    device = next(model.parameters()).device
    out = []
    with inference_context(device):
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size].to(device))
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, and the confusion matrix (rows = true)."""
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for i, label in enumerate(labels):
        tp = cm[i, i]
        precision = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        recall = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(cm[i, :].sum()),
        }
    return {
        "accuracy": round(float(np.trace(cm) / cm.sum()), 4),
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }
