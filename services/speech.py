"""Spoken-digit recognition service: audio bytes → the digit (or digit string) with confidences.

validate + decode (services.audio_io: size and duration guards, any format soundfile or ffmpeg can
read) → mono at the model's rate → split on pauses (one part per digit; silence or noise alone is
"no speech detected") → loudness-normalise each part → one batched forward through the GRU →
plain dicts. A clip with several digits ("four … two … seven") becomes the label "427" with a
confidence per digit; its overall confidence is the product of the per-digit ones.

CLI: `python -m services.speech FILE [FILE ...]` prints one JSON object per file.
"""

from __future__ import annotations

import heapq
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.runtime import inference_context, select_device
from models.speech import FSDD_DIGITS_GRU, PACKAGE_DIR, DigitRecognizer, LogMelFrontend, SpeechBundle
from services import audio_io
from services.errors import EmptyInputError, InputTooLargeError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = audio_io.MAX_UPLOAD_BYTES  # 20 MB
MAX_SECONDS = audio_io.MAX_SECONDS  # 30 s, read from the header before decoding
MAX_DIGITS = 20  # parts (digits) classified in one clip
MAX_BATCH = 64  # clips in one predict_batch call
TOP_K = 3
EXAMPLES_DIR = PACKAGE_DIR / "examples"
PLAYBACK_GAP_S = 0.25  # silence between parts in the processed audio the page plays back


@dataclass(frozen=True)
class _Prepared:
    wave: np.ndarray  # mono at the model rate, before normalisation
    parts: list[tuple[int, int]]  # sample ranges of the spoken parts
    segments: list[np.ndarray]  # loudness-normalised parts
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeechService:
    """Holds the frozen model; every call is stateless, so one instance serves all threads."""

    bundle: SpeechBundle
    device: torch.device
    frontend: LogMelFrontend
    model: DigitRecognizer

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    # -- preprocess ---------------------------------------------------------------------------
    def _prepare(self, data: bytes) -> _Prepared:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise EmptyInputError("no audio was given")
        data = bytes(data)
        wave, decoded = audio_io.load_mono(data, self.sample_rate)
        parts = audio_io.segment(wave, self.sample_rate)
        if len(parts) > MAX_DIGITS:
            raise InputTooLargeError(
                f"found {len(parts)} separate sounds; at most {MAX_DIGITS} digits are read from one recording"
            )
        segments = [audio_io.normalize_loudness(wave[start:end]) for start, end in parts]
        info = {
            "duration_s": round(decoded.duration_s, 3),
            "input_sample_rate": decoded.sample_rate,
            "input_channels": int(decoded.samples.shape[1]),
            "codec": decoded.codec,
            "speech_start_s": round(parts[0][0] / self.sample_rate, 3),
            "speech_end_s": round(parts[-1][1] / self.sample_rate, 3),
        }
        return _Prepared(wave, parts, segments, info)

    # -- forward ------------------------------------------------------------------------------
    def _forward(self, segments: list[np.ndarray]) -> np.ndarray:
        """One batched forward over every part; returns probabilities (N, C) as float32."""
        lengths = torch.tensor([s.shape[0] for s in segments], dtype=torch.long)
        waves = torch.zeros(len(segments), int(lengths.max()))
        for i, s in enumerate(segments):
            waves[i, : s.shape[0]] = torch.from_numpy(s)
        with inference_context(self.device):
            feats, frames = self.frontend(waves.to(self.device), lengths.to(self.device))
            logits, _ = self.model(feats, frames)
            probs = torch.softmax(logits.float(), dim=-1)
        return probs.cpu().numpy()

    def _explain(self, segments: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Features, attention and gradient×input saliency per 10 ms frame, for each part."""
        out = []
        for segment in segments:  # one at a time: no padding in the pictures
            wave = torch.from_numpy(segment)[None].to(self.device)
            length = torch.tensor([segment.shape[0]])
            with torch.no_grad():
                feats, frames = self.frontend(wave, length)
            feats = feats.detach().clone().requires_grad_(True)
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                logits, attention = self.model(feats, frames)
                predicted = logits[0, logits[0].argmax()]
                (grad,) = torch.autograd.grad(predicted, feats)
            saliency = (grad * feats).abs().sum(dim=-1)[0].detach()  # (T,)
            saliency = saliency / saliency.max().clamp_min(1e-12)
            out.append(
                {
                    "features": feats[0].detach().cpu().numpy(),  # (T, n_mels)
                    "importance": saliency.cpu().numpy(),  # (T,) in [0, 1], 10 ms frames
                    "attention": attention[0].detach().float().cpu().numpy(),  # (T',) 20 ms steps
                }
            )
        return out

    # -- postprocess --------------------------------------------------------------------------
    def _postprocess(self, prepared: _Prepared, probs: np.ndarray, top_k: int) -> dict[str, Any]:
        top_k = max(1, min(int(top_k), len(self.labels)))
        digits = []
        for (start, end), p in zip(prepared.parts, probs, strict=True):
            order = np.argsort(-p, kind="stable")[:top_k]
            digits.append(
                {
                    "label": self.labels[int(order[0])],
                    "confidence": round(float(p[order[0]]), 4),
                    "top_k": [{"label": self.labels[int(i)], "score": round(float(p[i]), 4)} for i in order],
                    "start_s": round(start / self.sample_rate, 3),
                    "end_s": round(end / self.sample_rate, 3),
                }
            )
        if len(digits) == 1:
            top = digits[0]["top_k"]
        else:
            top = [
                {"label": label, "score": round(score, 4)}
                for label, score in _best_strings(probs, self.labels, top_k)
            ]
        return {
            "label": "".join(d["label"] for d in digits),
            "confidence": round(float(np.prod([float(p.max()) for p in probs])), 4),
            "top_k": top,
            "n_digits": len(digits),
            "digits": digits,
            **prepared.info,
        }

    # -- public API ---------------------------------------------------------------------------
    def predict(self, data: bytes, *, top_k: int = TOP_K, explain: bool = False) -> dict[str, Any]:
        """Recognise the digit(s) in one audio file given as bytes.

        With `explain=True` the result also has `details` (numpy arrays for the page): the mono
        waveform, the spoken parts, the processed audio, the features, attention and saliency.
        """
        started = time.perf_counter()
        prepared = self._prepare(data)
        probs = self._forward(prepared.segments)
        result = self._postprocess(prepared, probs, top_k)
        if explain:
            result["details"] = self._details(prepared)
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    def predict_batch(self, items: list[bytes], *, top_k: int = TOP_K) -> list[dict[str, Any]]:
        """Many files at once: every part of every file goes through one forward pass.

        Bad input in any item raises its InputError (validate first, like `predict`).
        """
        if len(items) > MAX_BATCH:
            raise InputTooLargeError(f"at most {MAX_BATCH} files per batch")
        started = time.perf_counter()
        prepared = [self._prepare(item) for item in items]
        if not prepared:
            return []
        probs = self._forward([s for p in prepared for s in p.segments])
        results, offset = [], 0
        for p in prepared:
            n = len(p.segments)
            results.append(self._postprocess(p, probs[offset : offset + n], top_k))
            offset += n
        latency = round((time.perf_counter() - started) * 1000 / len(items), 2)
        for result in results:
            result["latency_ms"] = latency  # per item, amortised over the batch
        return results

    def _details(self, prepared: _Prepared) -> dict[str, Any]:
        gap = np.zeros(int(PLAYBACK_GAP_S * self.sample_rate), dtype=np.float32)
        pieces = []
        for i, segment in enumerate(prepared.segments):
            pieces.extend([gap, segment] if i else [segment])
        return {
            "sample_rate": self.sample_rate,
            "waveform": prepared.wave,
            "parts_s": [(s / self.sample_rate, e / self.sample_rate) for s, e in prepared.parts],
            "processed_audio": np.concatenate(pieces).astype(np.float32),
            "frame_s": self.bundle.features.hop_length / self.sample_rate,
            "segments": self._explain(prepared.segments),
        }


def _best_strings(probs: np.ndarray, labels: tuple[str, ...], k: int) -> list[tuple[str, float]]:
    """The k most probable digit strings under independent per-part distributions (beam search)."""
    beams: list[tuple[float, str]] = [(0.0, "")]
    for p in probs:
        candidates = [
            (logp + math.log(max(float(p[c]), 1e-12)), text + labels[c])
            for logp, text in beams
            for c in range(len(labels))
        ]
        beams = heapq.nlargest(k, candidates)
    return [(text, math.exp(logp)) for logp, text in beams]


def load_service(bundle: SpeechBundle = FSDD_DIGITS_GRU) -> SpeechService:
    """Load the weights once; the returned service is immutable and thread-safe."""
    device = select_device()
    service = SpeechService(
        bundle=bundle, device=device, frontend=bundle.get_frontend(device), model=bundle.get_model(device)
    )
    # Warm-up: the first forward and backward pay for lazy initialisation; do it here, not on a user.
    warm = np.sin(2 * np.pi * 150 * np.arange(4_000) / service.sample_rate).astype(np.float32) * 0.1
    service._forward([warm])
    service._explain([warm])
    return service


def example_inputs() -> list[dict[str, str]]:
    """Bundled examples: FSDD test-split clips (CC BY-SA 4.0) and one digit string made from them."""
    examples = []
    for path in sorted(EXAMPLES_DIR.glob("*.wav")):
        stem = path.stem
        if stem.startswith("string_"):
            spoken = stem.removeprefix("string_").split("_")[0]
            title = f"Digit string “{spoken}” (FSDD test clips joined with pauses)"
        else:
            digit, speaker, index = stem.split("_")
            spoken = digit
            title = f"“{digit}” spoken by {speaker} (FSDD test recording {index})"
        examples.append({"name": path.name, "path": str(path), "expected": spoken, "title": title})
    return examples


def attribution() -> str:
    path = EXAMPLES_DIR / "ATTRIBUTION.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def self_test(service: SpeechService | None = None) -> dict[str, Any]:
    """Recognise the first bundled example; the home page shows the result."""
    service = service or load_service()
    example = next(e for e in example_inputs() if not e["name"].startswith("string_"))
    result = service.predict(Path(example["path"]).read_bytes())
    return {
        "input": f"FSDD test clip {example['name']} (spoken “{example['expected']}”)",
        "output": f"heard “{result['label']}” ({result['confidence']:.0%})",
        "latency_ms": float(result["latency_ms"]),
    }


def _cli(argv: list[str]) -> int:
    import argparse

    from services.cli import read_file_bytes, run_per_input

    parser = argparse.ArgumentParser(
        prog="python -m services.speech",
        description="Recognise spoken digits in audio files (WAV, FLAC, OGG, MP3; M4A/AAC with ffmpeg).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--top-k", type=int, default=TOP_K)
    args = parser.parse_args(argv)
    service = load_service()

    def handle(path: str) -> dict[str, Any]:
        result = service.predict(read_file_bytes(path, MAX_UPLOAD_BYTES), top_k=args.top_k)
        keep = (
            "label",
            "confidence",
            "top_k",
            "latency_ms",
            "duration_s",
            "input_sample_rate",
            "input_channels",
        )
        out = {key: result[key] for key in keep}
        if result["n_digits"] > 1:
            out["digits"] = [{"label": d["label"], "confidence": d["confidence"]} for d in result["digits"]]
        return out

    return run_per_input(args.files, handle)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(_cli(sys.argv[1:]))
