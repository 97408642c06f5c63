"""Handwritten-digit CNN: the module, its shipped checkpoint bundle, and how to load it.

Architecture (the classic Keras MNIST CNN, with batch norm and dropout added):

    Conv 32 3x3 → MaxPool 2 → Conv 64 3x3 → MaxPool 2 → Conv 64 3x3 → Dense 64 → Dense 10

Convolutions use "same" padding (28 → 14 → 7), so the last feature map is 64 × 7 × 7; that map is
also what the Grad-CAM overlay is computed on. The network takes images in [0, 1] (ink = 1, paper
= 0, MNIST polarity) and normalises them itself with the bundle's mean/std, so callers never need
to know the constants.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = PACKAGE_DIR / "examples"


class DigitCNN(nn.Module):
    """Conv32 → Pool → Conv64 → Pool → Conv64 → Dense64 → Dense10 (logits)."""

    def __init__(
        self, mean: float = 0.1307, std: float = 0.3081, dropout: float = 0.3, num_classes: int = 10
    ):
        super().__init__()
        # Not persistent: they come from the bundle, so the weight file holds learned tensors only.
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),  # (B, 32, 28, 28)
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1, bias=False),  # (B, 64, 14, 14)
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Conv2d(64, 64, 3, padding=1, bias=False),  # (B, 64, 7, 7)
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Flatten(),  # (B, 3136)
            nn.Dropout(dropout / 2),
            nn.Linear(64 * 7 * 7, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images in [0, 1] → (B, 64, 7, 7) last conv activations."""
        return self.features((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images in [0, 1] → (B, 10) logits."""
        return self.head(self.forward_features(x))


@dataclass(frozen=True)
class PreprocessConfig:
    """How a free-form image is turned into an MNIST-like 28×28 (see models/vision/preprocess.py)."""

    canvas: int = 28  # output side, pixels
    box: int = 20  # the ink is fitted into box × box, as MNIST did, then centred by centre of mass
    work_side: int = 320  # decoded images are first reduced so their longest side is at most this
    min_contrast: float = 0.10  # ink-vs-paper contrast (0..1) below which the image counts as blank
    min_ink_side: int = 5  # the ink's bounding box must span at least this many working pixels
    target_stroke: tuple[float, float] = (1.6, 4.5)  # stroke width range (px) in the 20×20 box


@dataclass(frozen=True)
class DigitBundle:
    """One shipped checkpoint: weights, labels, normalisation and preprocessing parameters."""

    name: str
    weights: Path
    labels: tuple[str, ...] = tuple(str(d) for d in range(10))
    mean: float = 0.1307  # MNIST training-pixel mean over [0, 1] (PROVENANCE.md: 0.13066)
    std: float = 0.3081  # MNIST training-pixel std
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    training: str = "MNIST training set only (60,000 images), augmented on the fly"

    def build(self) -> DigitCNN:
        return DigitCNN(mean=self.mean, std=self.std, num_classes=len(self.labels))

    def get_model(self, device: torch.device | str = "cpu") -> DigitCNN:
        """Build, load the safetensors weights, move to `device`, freeze, and switch to eval mode."""
        started = time.perf_counter()
        model = self.build()
        state = load_file(str(self.weights))
        model.load_state_dict(state, strict=True)
        model.to(device).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)  # shared by all sessions: never trained in the app
        logger.info(
            "loaded %s on %s in %.0f ms", self.weights.name, device, (time.perf_counter() - started) * 1e3
        )
        return model


# Trained by this project on MNIST (60k training images, augmented; see MODEL_CARD.md).
# MNIST: LeCun, Cortes & Burges; commonly distributed under CC BY-SA 3.0.
MNIST_CNN = DigitBundle(name="mnist-cnn", weights=PACKAGE_DIR / "cnn.safetensors")


@functools.lru_cache(maxsize=4)
def get_model(device: str = "cpu") -> DigitCNN:
    """The shipped model on `device` (cached per device)."""
    return MNIST_CNN.get_model(device)
