"""Digit recognition service: validate → preprocess → forward → postprocess.

    python -m services.vision FILE [FILE ...]     one JSON line per file:
        {"file", "label", "confidence", "top_k", "latency_ms"}  or  {"file", "error"}

`load_service()` loads the CNN once; the returned `VisionService` is immutable and keeps no
per-request state, so one instance serves every session and thread. Bad input raises a subclass of
services.errors.InputError (limits: services.image_io.MAX_UPLOAD_BYTES, MAX_PIXELS).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.vision import EXAMPLES_DIR, MNIST_CNN, DigitBundle, DigitCNN
from models.vision.preprocess import NoInkFound, Preprocessed, preprocess_gray
from services.cli import read_file_bytes, run_per_input
from services.device import inference_context, select_device
from services.errors import InputError, NothingFoundError
from services.image_io import MAX_PIXELS, MAX_UPLOAD_BYTES, DecodedImage, decode_array, decode_image

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MAX_PIXELS",
    "MAX_BATCH",
    "TOP_K",
    "VisionService",
    "load_service",
    "example_inputs",
    "model_info",
    "self_test",
]

logger = logging.getLogger(__name__)

TOP_K = 3  # classes listed per prediction
MAX_BATCH = 64  # images per predict_batch call (the page and the CLI split larger sets)
UNCERTAIN_BELOW = 0.6  # confidence under which the page says the model is unsure


@dataclass(frozen=True)
class _Prepared:
    decoded: DecodedImage
    pre: Preprocessed
    seconds: float  # time spent decoding and preprocessing


@dataclass(frozen=True, eq=False)
class VisionService:
    """The loaded CNN plus everything needed to run it; never mutated after `load_service()`."""

    bundle: DigitBundle
    model: DigitCNN
    device: torch.device
    load_ms: float

    # ---- preprocess ---------------------------------------------------------------------
    def _prepare(self, decoded: DecodedImage, started: float) -> _Prepared:
        try:
            pre = preprocess_gray(decoded.gray, self.bundle.preprocess)
        except NoInkFound as err:
            raise NothingFoundError(
                f"{err}: the image looks blank. Send a single dark-on-light or light-on-dark digit."
            ) from err
        return _Prepared(decoded, pre, time.perf_counter() - started)

    def prepare_bytes(self, data: bytes) -> _Prepared:
        started = time.perf_counter()
        return self._prepare(decode_image(data), started)

    def prepare_array(self, array: np.ndarray) -> _Prepared:
        started = time.perf_counter()
        return self._prepare(decode_array(array), started)

    # ---- forward ------------------------------------------------------------------------
    def _forward(self, images: np.ndarray) -> np.ndarray:
        """(B, 28, 28) float32 → (B, 10) probabilities (numpy, float64)."""
        x = torch.from_numpy(images).unsqueeze(1).to(self.device)  # (B, 1, 28, 28)
        with inference_context(self.device):
            logits = self.model(x)
        return torch.softmax(logits.float(), dim=1).cpu().double().numpy()

    def _grad_cam(self, images: np.ndarray, targets: Sequence[int]) -> np.ndarray:
        """Grad-CAM on the last conv block, upsampled to 28×28 and scaled to [0, 1] per image.

        Gradients are taken with torch.autograd.grad with respect to the activations only (the
        weights are frozen), so nothing is written to the shared model.
        """
        x = torch.from_numpy(images).unsqueeze(1).to(self.device)
        with torch.enable_grad():
            feats = self.model.forward_features(x).detach().requires_grad_(True)  # (B, 64, 7, 7)
            logits = self.model.head(feats)
            chosen = logits[
                torch.arange(len(targets)), torch.as_tensor(list(targets), device=self.device)
            ].sum()
            (grads,) = torch.autograd.grad(chosen, feats)
        weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, 64, 1, 1)
        cam = F.relu((weights * feats.detach()).sum(1, keepdim=True))  # (B, 1, 7, 7)
        cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
        return (cam / peak).cpu().numpy()

    # ---- postprocess --------------------------------------------------------------------
    def _result(
        self, prep: _Prepared, probs: np.ndarray, forward_s: float, top_k: int, cam=None
    ) -> dict[str, Any]:
        order = np.argsort(-probs)[: max(1, min(top_k, len(probs)))]
        labels = self.bundle.labels
        best = int(order[0])
        result: dict[str, Any] = {
            "label": labels[best],
            "confidence": round(float(probs[best]), 4),
            "top_k": [{"label": labels[i], "score": round(float(probs[i]), 4)} for i in order],
            "latency_ms": round((prep.seconds + forward_s) * 1000, 2),
            "device": str(self.device),
            "uncertain": bool(probs[best] < UNCERTAIN_BELOW),
            "inverted": prep.pre.inverted,
            "format": prep.decoded.format,
            "size": list(prep.decoded.size),
            "notes": list(prep.decoded.notes),
        }
        if cam is not None:
            result["model_input"] = np.round(prep.pre.image, 3).tolist()
            result["saliency"] = np.round(cam, 3).tolist()
        return result

    def _run(self, prepared: Sequence[_Prepared], top_k: int, explain: bool) -> list[dict[str, Any]]:
        if not prepared:
            return []
        images = np.stack([p.pre.image for p in prepared]).astype(np.float32)
        started = time.perf_counter()
        probs = self._forward(images)
        cams = self._grad_cam(images, probs.argmax(1).tolist()) if explain else [None] * len(prepared)
        share = (time.perf_counter() - started) / len(prepared)  # batched forward, split evenly
        return [
            self._result(p, pr, share, top_k, cam) for p, pr, cam in zip(prepared, probs, cams, strict=True)
        ]

    # ---- public API ---------------------------------------------------------------------
    def predict(self, data: bytes, *, top_k: int = TOP_K, explain: bool = False) -> dict[str, Any]:
        """One encoded image (PNG, JPEG, ...) → {"label", "confidence", "top_k", "latency_ms", ...}.

        With explain=True the result also holds "model_input" (the 28×28 the network saw) and
        "saliency" (Grad-CAM, 28×28 in [0, 1]) as nested lists.
        """
        return self._run([self.prepare_bytes(data)], top_k, explain)[0]

    def predict_array(
        self, array: np.ndarray, *, top_k: int = TOP_K, explain: bool = False
    ) -> dict[str, Any]:
        """A picture already in memory (e.g. the canvas's (H, W, 4) RGBA uint8) → as `predict`."""
        return self._run([self.prepare_array(array)], top_k, explain)[0]

    def predict_batch(
        self, items: Sequence[bytes], *, top_k: int = TOP_K, explain: bool = False, raise_errors: bool = False
    ) -> list[dict[str, Any]]:
        """Many encoded images, one batched forward per MAX_BATCH; results in input order.

        A bad item becomes {"error": message, "error_type": class name} in its slot (or raises its
        InputError when raise_errors=True), so one broken upload never hides the other results.
        """
        out: list[dict[str, Any] | None] = [None] * len(items)
        for start in range(0, len(items), MAX_BATCH):
            chunk, slots = [], []
            for i in range(start, min(start + MAX_BATCH, len(items))):
                try:
                    chunk.append(self.prepare_bytes(items[i]))
                    slots.append(i)
                except InputError as err:
                    if raise_errors:
                        raise
                    out[i] = {"error": str(err), "error_type": type(err).__name__}
            for i, result in zip(slots, self._run(chunk, top_k, explain), strict=True):
                out[i] = result
        return [r for r in out if r is not None]

    def predict_file(self, path: str, *, top_k: int = TOP_K) -> dict[str, Any]:
        """For the CLI: a path on disk → the CLI's fields (label, confidence, top_k, latency_ms)."""
        started = time.perf_counter()
        result = self.predict(read_file_bytes(path, MAX_UPLOAD_BYTES), top_k=top_k)
        record = {k: result[k] for k in ("label", "confidence", "top_k")}
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        if result["notes"]:
            record["notes"] = result["notes"]
        return record


@functools.lru_cache(maxsize=1)
def load_service() -> VisionService:
    """Load the shipped CNN once per process on the selected device."""
    started = time.perf_counter()
    device = select_device()
    model = MNIST_CNN.get_model(device)
    return VisionService(MNIST_CNN, model, device, round((time.perf_counter() - started) * 1000, 1))


def example_inputs() -> list[dict[str, Any]]:
    """The bundled example images: [{"name", "path", "label", "description"}], gallery order."""
    index = json.loads((EXAMPLES_DIR / "index.json").read_text())
    return [{**item, "path": str(EXAMPLES_DIR / item["name"])} for item in index]


def model_info() -> dict[str, Any]:
    """What the page's "about" panel shows: architecture, size, training data, measured accuracy."""
    from models.vision import PACKAGE_DIR

    metrics_path = PACKAGE_DIR / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    service = load_service()
    return {
        "name": MNIST_CNN.name,
        "architecture": "Conv 32 3×3 → MaxPool → Conv 64 3×3 → MaxPool → Conv 64 3×3 → Dense 64 → Dense 10 "
        "(batch norm, dropout)",
        "parameters": sum(p.numel() for p in service.model.parameters()),
        "training_data": "MNIST, 60,000 training images, augmented on the fly (no other data)",
        "test_accuracy": metrics.get("accuracy"),
        "accuracy_through_app_preprocessing": metrics.get("accuracy_through_app_preprocessing"),
        "load_ms": service.load_ms,
        "max_upload_mb": MAX_UPLOAD_BYTES / 2**20,
        "max_megapixels": MAX_PIXELS / 1e6,
    }


def self_test() -> dict[str, Any]:
    """Recognise the first bundled example; for the home page's health panel."""
    example = example_inputs()[0]
    service = load_service()
    result = service.predict((EXAMPLES_DIR / example["name"]).read_bytes())
    return {
        "input": f"{example['description']} ({example['name']}, a {example['label']})",
        "output": f"{result['label']} ({result['confidence']:.1%})",
        "latency_ms": result["latency_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.vision",
        description="Recognise the digit in each image file (one JSON line each).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--top-k", type=int, default=TOP_K)
    args = parser.parse_args(argv)
    service = load_service()
    return run_per_input(args.files, lambda path: service.predict_file(path, top_k=args.top_k))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(main())
