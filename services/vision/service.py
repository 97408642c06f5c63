"""VisionService: image bytes or a canvas array → the number written in it, digit by digit.

preprocess: validate and decode (services.image_io: size, pixel and format guards; HEIC/AVIF; EXIF
orientation) → find the digits (models.vision.segment: components, broken strokes merged, touching
digits split, specks and lines dropped, slant corrected) → one 28×28 per digit. An image holding a
single digit goes through exactly the single-digit preprocessing it always had, so its answer is
unchanged.
_forward: the digits segmentation has not read yet (it scores candidate digits with this same CNN
and hands those readings on), of every image, through the CNN in one batch (plus Grad-CAM when asked).
postprocess: per digit a label, confidence, top_k and box; the number is the digits in reading
order, its confidence the product of theirs, its top_k the most probable whole strings.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.vision import EXAMPLES_DIR, MNIST_CNN, PACKAGE_DIR, DigitBundle, DigitCNN
from models.vision.count import DIGIT_COUNT
from models.vision.preprocess import NoInkFound, preprocess_gray
from models.vision.segment import Scorer, SegmentConfig, segment_digits
from services import limits
from services.base import Service, cached_loader
from services.device import inference_context, select_device
from services.errors import NothingFoundError, UnsupportedFormatError
from services.image_io import (
    FORMAT_NAMES,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    DecodedImage,
    decode_array,
    decode_image,
)

logger = logging.getLogger(__name__)

TOP_K = limits.VISION.top_k  # alternatives listed per digit and per number
MAX_BATCH = limits.VISION.max_batch  # images per predict_batch call (the page and the CLI split larger sets)
SEGMENTATION = SegmentConfig()
MAX_DIGITS = SEGMENTATION.max_digits
METRICS_PATH = PACKAGE_DIR / "metrics.json"


def _doubt_threshold(default: float = 0.6) -> float:
    """The whole-number confidence under which an answer is flagged ("check this number"), as
    models.vision.calibration chose it on numbers made of training digits (metrics.json): from 0.9 up
    every confidence bin was right at least 95 % of the time, below it about 2 in 3."""
    record = (
        json.loads(METRICS_PATH.read_text()).get("number_calibration", {}) if METRICS_PATH.is_file() else {}
    )
    return float(record.get("doubt_below", default))


LOW_CONFIDENCE_BELOW = _doubt_threshold()  # probability of the whole answer under which it is flagged


@dataclass(frozen=True)
class Prepared:
    decoded: DecodedImage
    images: np.ndarray  # (n_digits, 28, 28) float32: what the network sees, reading order
    boxes: list[tuple[int, int, int, int]]  # per digit, in upright image pixels
    inverted: bool
    notes: tuple[str, ...]
    known_probs: tuple[np.ndarray | None, ...]  # per digit, (10,) when segmentation already read it


@dataclass(frozen=True)
class Output:
    probs: np.ndarray  # (n_digits, 10) float64
    cams: np.ndarray | None  # (n_digits, 28, 28) Grad-CAM in [0, 1], when explain=True


def _read_digits(
    decoded: DecodedImage, bundle: DigitBundle, scorer: Scorer, counter: Scorer | None = None
) -> Prepared:
    """Find and cut the digits; `scorer` is the CNN, which segmentation asks about candidate cuts,
    `counter` the network that tells one digit from several or from part of one."""
    gray = decoded.gray
    try:
        found = segment_digits(gray, bundle.preprocess, SEGMENTATION, scorer, counter)
        notes = list(decoded.notes) + list(found.notes)
        if len(found.digits) == 1:
            # One digit: the original single-digit path, so answers stay what they always were.
            single = preprocess_gray(gray, bundle.preprocess)
            x0, y0, x1, y1 = (round(v / single.scale) for v in single.bbox)
            images = single.image[None]
            boxes = [(x0, y0, min(x1, gray.shape[1]), min(y1, gray.shape[0]))]
            inverted = single.inverted
            known_probs: tuple[np.ndarray | None, ...] = (None,)  # another crop than segmentation's
        else:
            images = np.stack([d.image for d in found.digits])
            boxes = [d.box for d in found.digits]
            inverted = found.inverted
            known_probs = tuple(d.probs for d in found.digits)
    except NoInkFound as err:
        raise NothingFoundError(
            f"{err}: the image looks blank. Send digits that are dark on light or light on dark."
        ) from err
    # Boxes were found on the (possibly reduced) decoded picture: report them in upright pixels.
    width, height = decoded.upright_size
    sx, sy = width / gray.shape[1], height / gray.shape[0]
    boxes = [
        (int(x0 * sx), int(y0 * sy), min(width, math.ceil(x1 * sx)), min(height, math.ceil(y1 * sy)))
        for x0, y0, x1, y1 in boxes
    ]
    return Prepared(decoded, images.astype(np.float32), boxes, inverted, tuple(notes), known_probs)


def best_strings(probs: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The k most probable whole strings, digits taken as independent (exact k-best by beam).

    A prefix outside the k best prefixes cannot start one of the k best strings: the k better
    prefixes with the same ending would beat it. So a beam of width k is exact.
    """
    beam: list[tuple[float, str]] = [(0.0, "")]
    for row in probs:
        candidates = (
            (logp + math.log(max(float(p), 1e-12)), text + labels[i])
            for logp, text in beam
            for i, p in enumerate(row)
        )
        beam = heapq.nlargest(k, candidates)
    return [(text, math.exp(logp)) for logp, text in beam]


def _architecture(model: nn.Module) -> str:
    """'Conv 32 3×3 → MaxPool 2 → ... → Dense 10 (batch norm, dropout)', read off the loaded modules."""
    steps, extras = [], set()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            steps.append(f"Conv {module.out_channels} {module.kernel_size[0]}×{module.kernel_size[1]}")
        elif isinstance(module, nn.MaxPool2d):
            steps.append(f"MaxPool {module.kernel_size}")
        elif isinstance(module, nn.Linear):
            steps.append(f"Dense {module.out_features}")
        elif isinstance(module, nn.BatchNorm2d):
            extras.add("batch norm")
        elif isinstance(module, nn.Dropout):
            extras.add("dropout")
    return " → ".join(steps) + (f" ({', '.join(sorted(extras))})" if extras else "")


def example_inputs() -> list[dict[str, Any]]:
    """The bundled example images: [{"name", "path", "label", "description"}], gallery order."""
    index = json.loads((EXAMPLES_DIR / "index.json").read_text())
    return [{**item, "path": str(EXAMPLES_DIR / item["name"])} for item in index]


class VisionService(Service):
    """The frozen CNN and its bundle; every call is stateless, so one instance serves all threads."""

    task = "vision"
    max_batch = MAX_BATCH

    def __init__(
        self,
        bundle: DigitBundle,
        model: DigitCNN,
        device: torch.device,
        load_ms: float,
        count_model: DigitCNN | None = None,
    ):
        self.bundle = bundle
        self.model = model
        self.count_model = count_model
        self.device = device
        self.load_ms = load_ms
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        # Shared by every session and thread: nothing may be swapped after loading.
        if getattr(self, "_frozen", False):
            raise AttributeError(f"VisionService is read-only; cannot set {name!r}")
        super().__setattr__(name, value)

    # ---- the three stages ----------------------------------------------------------------
    def preprocess(self, item: Any, **options: Any) -> Prepared:
        if isinstance(item, bytes | bytearray | memoryview):
            decoded = decode_image(bytes(item))
        elif isinstance(item, np.ndarray):
            decoded = decode_array(item)
        else:
            raise UnsupportedFormatError(f"expected image bytes ({FORMAT_NAMES}) or a picture array")
        counter = self._counts if self.count_model is not None else None
        return _read_digits(decoded, self.bundle, self._probabilities, counter)

    def _probabilities(self, images: np.ndarray, model: nn.Module | None = None) -> np.ndarray:
        """(N, 28, 28) → (N, 10) float64 class probabilities; also how segmentation scores cuts."""
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1).to(self.device)
        with inference_context(self.device):
            logits = (model or self.model)(x)  # (N, classes)
        return torch.softmax(logits.float(), dim=1).cpu().double().numpy()

    def _counts(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) → (N, 3) P(one digit, several digits, part of a digit)."""
        return self._probabilities(images, self.count_model)

    def _forward(self, prepared: Sequence[Prepared], explain: bool = False, **_: Any) -> list[Output]:
        images = np.concatenate([p.images for p in prepared])  # (sum of digits, 28, 28)
        known = [row for p in prepared for row in p.known_probs]
        unread = [i for i, row in enumerate(known) if row is None]
        probs = np.empty((len(images), len(self.bundle.labels)), dtype=np.float64)
        if unread:
            probs[unread] = self._probabilities(images[unread])
        for i, row in enumerate(known):
            if row is not None:
                probs[i] = row
        cams = None
        if explain:
            x = torch.from_numpy(images).unsqueeze(1).to(self.device)  # (B, 1, 28, 28)
            cams = self._grad_cam(x, probs.argmax(1).tolist())
        outputs, start = [], 0
        for p in prepared:
            stop = start + len(p.images)
            outputs.append(Output(probs[start:stop], None if cams is None else cams[start:stop]))
            start = stop
        return outputs

    def _grad_cam(self, x: torch.Tensor, targets: Sequence[int]) -> np.ndarray:
        """Grad-CAM on the last conv block, upsampled to 28×28 and scaled to [0, 1] per image.

        Gradients are taken with torch.autograd.grad with respect to the activations only (the
        weights are frozen), so nothing is written to the shared model.
        """
        with torch.enable_grad():
            feats = self.model.forward_features(x).detach().requires_grad_(True)  # (B, 64, 7, 7)
            logits = self.model.head(feats)
            index = torch.as_tensor(list(targets), device=x.device)
            chosen = logits[torch.arange(len(targets), device=x.device), index].sum()
            (grads,) = torch.autograd.grad(chosen, feats)
        weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, 64, 1, 1)
        cam = F.relu((weights * feats.detach()).sum(1, keepdim=True))  # (B, 1, 7, 7)
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
        return (cam / peak).float().cpu().numpy()

    def postprocess(
        self, prepared: Prepared, output: Output, top_k: int = TOP_K, explain: bool = False, **_: Any
    ) -> dict[str, Any]:
        labels = self.bundle.labels
        k = max(1, min(int(top_k), len(labels)))
        digits = []
        for i, (row, box) in enumerate(zip(output.probs, prepared.boxes, strict=True)):
            order = np.argsort(-row)[:k]
            digit: dict[str, Any] = {
                "label": labels[int(order[0])],
                "confidence": round(float(row[order[0]]), 4),
                "top_k": [{"label": labels[j], "score": round(float(row[j]), 4)} for j in order],
                "box": list(box),
            }
            if explain and output.cams is not None:
                digit["model_input"] = np.round(prepared.images[i], 3).tolist()
                digit["saliency"] = np.round(output.cams[i], 3).tolist()
            digits.append(digit)
        strings = best_strings(output.probs, labels, k)
        confidence = strings[0][1]
        return {
            "label": strings[0][0],
            "confidence": round(confidence, 4),
            "top_k": [{"label": text, "score": round(p, 4)} for text, p in strings],
            "low_confidence": bool(confidence < LOW_CONFIDENCE_BELOW),
            "digits": digits,
            "notes": list(prepared.notes),
            "device": str(self.device),
            "inverted": prepared.inverted,
            "format": prepared.decoded.format,
            "size": list(prepared.decoded.upright_size),
        }

    # ---- public calls with the documented options ----------------------------------------
    def predict(self, data: bytes, *, top_k: int = TOP_K, explain: bool = False) -> dict[str, Any]:
        """One encoded image (PNG, JPEG, HEIC, ...) → the number it shows.

        With explain=True each digit also carries "model_input" (the 28×28 the network saw) and
        "saliency" (Grad-CAM, 28×28 in [0, 1]) as nested lists.
        """
        return super().predict(data, top_k=top_k, explain=explain)

    def predict_array(
        self, array: np.ndarray, *, top_k: int = TOP_K, explain: bool = False
    ) -> dict[str, Any]:
        """A picture already in memory (the canvas's (H, W, 4) RGBA uint8) → as `predict`."""
        return super().predict(array, top_k=top_k, explain=explain)

    def predict_batch(
        self, items: Sequence[bytes], *, top_k: int = TOP_K, explain: bool = False
    ) -> list[dict[str, Any]]:
        """Many encoded images, all their digits in one forward pass; bad items get an error entry."""
        return super().predict_batch(items, top_k=top_k, explain=explain)

    # ---- facts -----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Card facts read from the bundle, the loaded network and metrics.json."""
        metrics = json.loads(METRICS_PATH.read_text()) if METRICS_PATH.is_file() else {}
        cfg = self.bundle.preprocess
        return {
            "task": self.task,
            "name": self.bundle.name,
            "architecture": _architecture(self.model),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "weights_bytes": Path(self.bundle.weights).stat().st_size,
            "labels": list(self.bundle.labels),
            "features": {
                "input": f"{cfg.canvas}×{cfg.canvas} grey, ink bright on black, fitted into "
                f"{cfg.box}×{cfg.box} and centred by mass (as MNIST)",
                "normalisation": {"mean": self.bundle.mean, "std": self.bundle.std},
            },
            "training": self.bundle.training,
            "segmentation_helper": None
            if self.count_model is None
            else {
                "name": DIGIT_COUNT.name,
                "question": "is a cut-out one digit, several digits, or part of a digit?",
                "labels": list(DIGIT_COUNT.labels),
                "parameters": int(sum(p.numel() for p in self.count_model.parameters())),
                "weights_bytes": Path(DIGIT_COUNT.weights).stat().st_size,
                "training": DIGIT_COUNT.training,
            },
            "metrics": metrics,
            "device": str(self.device),
            "load_ms": self.load_ms,
            "limits": {
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "max_pixels": MAX_PIXELS,
                "max_batch": MAX_BATCH,
                "max_digits": MAX_DIGITS,
                "formats": FORMAT_NAMES,
            },
        }

    def self_test(self) -> dict[str, Any]:
        """Recognise the first bundled example; the home page shows the result."""
        example = example_inputs()[0]
        result = self.predict(Path(example["path"]).read_bytes())
        return {
            "input": f"{example['description']} ({example['name']}, a {example['label']})",
            "output": f"{result['label']} ({result['confidence']:.1%})",
            "latency_ms": float(result["latency_ms"]),
        }


def _build() -> VisionService:
    started = time.perf_counter()
    device = select_device()
    model = MNIST_CNN.get_model(device)
    count_model = DIGIT_COUNT.get_model(device)
    return VisionService(
        MNIST_CNN, model, device, round((time.perf_counter() - started) * 1000, 1), count_model=count_model
    )


load_service = cached_loader(_build)
