"""Spoken-digit recognition service: audio bytes → the digit (or digit string) with confidences.

preprocess: validate + decode (services.audio_io: size and duration guards, any format soundfile or
ffmpeg can read) → mono at the model's rate → split on pauses (one part per spoken word; silence or
noise alone is "no speech detected") → loudness-normalise each part.
_forward: every part of every item through the recurrent network in one batch.
postprocess: per part, a digit or "not a digit" (the checkpoint's "other" class, or a best digit below
the rejection threshold chosen on validation data); the digits are joined into the label. A clip with
only non-digit speech answers `label=None, reason="not a digit"`; in a string, non-digit parts are
dropped with a note rather than guessed.

CLI: `python -m services.speech FILE [FILE ...]` prints one JSON object per file.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.runtime import inference_context, select_device
from models.speech import FSDD_DIGITS_GRU, PACKAGE_DIR, DigitEnsemble, LogMelFrontend, SpeechBundle
from services import audio_io, limits
from services.base import Service, cached_loader
from services.errors import EmptyInputError, InputTooLargeError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = audio_io.MAX_UPLOAD_BYTES  # 20 MB
MAX_SECONDS = audio_io.MAX_SECONDS  # 30 s, read from the header before decoding
MAX_DIGITS = 20  # parts (words) classified in one clip
MAX_BATCH = limits.SPEECH.max_batch  # clips in one predict_batch call
TOP_K = limits.SPEECH.top_k
LOW_CONFIDENCE = 0.5  # below this overall confidence the answer is flagged as a guess
NOT_A_DIGIT = "not a digit"
EXAMPLES_DIR = PACKAGE_DIR / "examples"
METRICS_PATH = PACKAGE_DIR / "metrics.json"
PLAYBACK_GAP_S = 0.25  # silence between parts in the processed audio the page plays back


@dataclass(frozen=True)
class _Prepared:
    wave: np.ndarray  # mono at the model rate, before normalisation
    parts: list[tuple[int, int]]  # sample ranges of the spoken parts
    segments: list[np.ndarray]  # loudness-normalised parts
    info: dict[str, Any] = field(default_factory=dict)


class SpeechService(Service):
    """Holds the frozen model; every call is stateless, so one instance serves all threads."""

    task = "speech"
    max_batch = MAX_BATCH

    def __init__(self, bundle: SpeechBundle, device: torch.device) -> None:
        self.bundle = bundle
        self.device = device
        self.frontend: LogMelFrontend = bundle.get_frontend(device)
        self.model: DigitEnsemble = bundle.get_model(device)

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.labels

    # -- public calls (typed signatures over Service.predict / predict_batch) -----------------
    def predict(self, data: bytes, *, top_k: int = TOP_K, explain: bool = False) -> dict[str, Any]:
        """Recognise the digit(s) in one audio file given as bytes.

        With `explain=True` the result also has `details` (plain lists): the mono waveform, the
        spoken parts, the processed audio, and per part the features, attention and saliency.
        """
        return super().predict(data, top_k=top_k, explain=explain)

    def predict_batch(
        self, items: list[bytes], *, top_k: int = TOP_K, explain: bool = False
    ) -> list[dict[str, Any]]:
        """Many files at once: every part of every file goes through one forward pass."""
        return super().predict_batch(items, top_k=top_k, explain=explain)

    # -- preprocess ---------------------------------------------------------------------------
    def preprocess(self, data: bytes, **options: Any) -> _Prepared:
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
    def _forward(self, prepared: list[_Prepared], **options: Any) -> list[np.ndarray]:
        """One batched forward over every part of every item; (parts, C) probabilities per item."""
        segments = [s for p in prepared for s in p.segments]
        probs = self._probabilities(segments)
        out, offset = [], 0
        for p in prepared:
            out.append(probs[offset : offset + len(p.segments)])
            offset += len(p.segments)
        return out

    def _probabilities(self, segments: list[np.ndarray]) -> np.ndarray:
        lengths = torch.tensor([s.shape[0] for s in segments], dtype=torch.long)
        waves = torch.zeros(len(segments), int(lengths.max()))
        for i, s in enumerate(segments):
            waves[i, : s.shape[0]] = torch.from_numpy(s)
        with inference_context(self.device):
            feats, frames = self.frontend(waves.to(self.device), lengths.to(self.device))
            logits, _ = self.model(feats, frames)
            probs = torch.softmax(logits.float(), dim=-1)
        return probs.cpu().numpy()

    def _explain(self, segments: list[np.ndarray]) -> list[dict[str, list]]:
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
                    "features": np.round(feats[0].detach().float().cpu().numpy(), 4).tolist(),  # (T, n_mels)
                    "importance": np.round(saliency.float().cpu().numpy(), 4).tolist(),  # (T,) 10 ms frames
                    "attention": np.round(attention[0].detach().float().cpu().numpy(), 5).tolist(),  # 20 ms
                }
            )
        return out

    # -- postprocess --------------------------------------------------------------------------
    def _is_digit(self, p: np.ndarray) -> bool:
        other = self.bundle.other_index
        best = int(np.argmax(p))
        if other is not None and best == other:
            return False
        return float(p[best]) >= self.bundle.reject_threshold

    def postprocess(
        self, prepared: _Prepared, probs: np.ndarray, *, top_k: int = TOP_K, explain: bool = False, **_: Any
    ) -> dict[str, Any]:
        top_k = max(1, min(int(top_k), len(self.labels)))
        parts = []
        for (start, end), p in zip(prepared.parts, probs, strict=True):
            order = np.argsort(-p, kind="stable")[:top_k]
            is_digit = self._is_digit(p)
            parts.append(
                {
                    "label": self.labels[int(order[0])] if is_digit else None,
                    "confidence": round(float(p[order[0]]), 4),
                    "top_k": [{"label": self.labels[int(i)], "score": round(float(p[i]), 4)} for i in order],
                    "start_s": round(start / self.sample_rate, 3),
                    "end_s": round(end / self.sample_rate, 3),
                    "is_digit": is_digit,
                }
            )
        kept = [i for i, part in enumerate(parts) if part["is_digit"]]
        notes = []
        if not kept:
            # Speech, but no part of it is a digit: say so instead of guessing one.
            result = {
                "label": None,
                "reason": NOT_A_DIGIT,
                "confidence": round(float(np.mean([_not_digit_score(p, self.bundle) for p in probs])), 4),
                "top_k": parts[0]["top_k"] if len(parts) == 1 else [],
                "low_confidence": False,
            }
            notes.append("heard speech, but not a digit 0–9")
        else:
            digit_probs = probs[kept]
            label = "".join(parts[i]["label"] for i in kept)
            confidence = float(np.prod([float(p.max()) for p in digit_probs]))
            if len(kept) == 1 and len(parts) == 1:
                top = parts[0]["top_k"]
            else:
                digit_columns = [i for i, name in enumerate(self.labels) if i != self.bundle.other_index]
                top = [
                    {"label": text, "score": round(score, 4)}
                    for text, score in _best_strings(
                        digit_probs[:, digit_columns], [self.labels[i] for i in digit_columns], top_k
                    )
                ]
            dropped = len(parts) - len(kept)
            if dropped:
                where = ", ".join(
                    f"{parts[i]['start_s']:.2f}–{parts[i]['end_s']:.2f} s"
                    for i, part in enumerate(parts)
                    if not part["is_digit"]
                )
                notes.append(f"{dropped} part(s) that were not a digit were left out ({where})")
            result = {
                "label": label,
                "confidence": round(confidence, 4),
                "top_k": top,
                "low_confidence": confidence < LOW_CONFIDENCE,
            }
        for part in parts:
            del part["is_digit"]
        result.update({"n_digits": len(kept), "n_parts": len(parts), "digits": [parts[i] for i in kept],
                       "parts": parts, "notes": notes, **prepared.info})  # fmt: skip
        if explain:
            result["details"] = self._details(prepared)
        return result

    def _details(self, prepared: _Prepared) -> dict[str, Any]:
        gap = np.zeros(int(PLAYBACK_GAP_S * self.sample_rate), dtype=np.float32)
        pieces = []
        for i, segment in enumerate(prepared.segments):
            pieces.extend([gap, segment] if i else [segment])
        return {
            "sample_rate": self.sample_rate,
            "waveform": np.round(prepared.wave, 5).tolist(),
            "parts_s": [[s / self.sample_rate, e / self.sample_rate] for s, e in prepared.parts],
            "processed_audio": np.round(np.concatenate(pieces), 5).tolist(),
            "frame_s": self.bundle.features.hop_length / self.sample_rate,
            "segments": self._explain(prepared.segments),
        }

    # -- facts and self-test ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Card facts read from the bundle, the loaded network and metrics.json."""
        metrics = json.loads(METRICS_PATH.read_text()) if METRICS_PATH.is_file() else {}
        return {
            "task": self.task,
            "name": self.bundle.name,
            "architecture": _architecture(self.bundle),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "weights_bytes": self.bundle.weights_path.stat().st_size,
            "labels": list(self.labels),
            "features": {"kind": "log-mel spectrogram", **self.bundle.describe()["features"]},
            "sample_rate": self.sample_rate,
            "reject_threshold": self.bundle.reject_threshold,
            "training": self.bundle.training,
            "metrics": metrics,
            "limits": {
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "max_seconds": MAX_SECONDS,
                "max_digits": MAX_DIGITS,
                "max_batch": MAX_BATCH,
            },
        }

    def self_test(self) -> dict[str, Any]:
        """Recognise the first bundled example; the home page shows the result."""
        example = next(e for e in example_inputs() if e["kind"] == "digit")
        result = self.predict(Path(example["path"]).read_bytes())
        heard = f"heard “{result['label']}” ({result['confidence']:.0%})" if result["label"] else NOT_A_DIGIT
        return {
            "input": f"{example['title']}",
            "output": heard,
            "latency_ms": float(result["latency_ms"]),
        }


def _architecture(bundle: SpeechBundle) -> str:
    m = bundle.model
    members = f"average of {m.members} networks: " if m.members > 1 else ""
    return (
        f"{members}1-D conv ({m.conv_channels} channels) → {m.layers}-layer bidirectional GRU "
        f"({m.hidden} per direction) → attention pooling → {m.n_classes} classes"
    )


def _not_digit_score(p: np.ndarray, bundle: SpeechBundle) -> float:
    """How sure the model is that a part is not a digit: P(other), or 1 − best digit without one."""
    if bundle.other_index is not None and int(np.argmax(p)) == bundle.other_index:
        return float(p[bundle.other_index])
    return 1.0 - float(np.max(p))


def _best_strings(probs: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable digit strings under independent per-part distributions (beam search)."""
    probs = probs / probs.sum(axis=1, keepdims=True).clip(1e-12)
    beams: list[tuple[float, str]] = [(0.0, "")]
    for p in probs:
        candidates = [
            (logp + math.log(max(float(p[c]), 1e-12)), text + labels[c])
            for logp, text in beams
            for c in range(len(labels))
        ]
        beams = heapq.nlargest(k, candidates)
    return [(text, math.exp(logp)) for logp, text in beams]


def _build(bundle: SpeechBundle = FSDD_DIGITS_GRU) -> SpeechService:
    """Load the weights; the returned service is immutable and thread-safe."""
    service = SpeechService(bundle, select_device())
    # Warm-up: the first forward and backward pay for lazy initialisation; do it here, not on a user.
    warm = np.sin(2 * np.pi * 150 * np.arange(4_000) / service.sample_rate).astype(np.float32) * 0.1
    service._probabilities([warm])
    service._explain([warm])
    return service


load_service = cached_loader(_build)


def example_inputs() -> list[dict[str, str]]:
    """Bundled examples (see examples/ATTRIBUTION.md): FSDD test-split clips (CC BY-SA 4.0) and a digit
    string made from them; a file named `other_<word>_<speaker>.wav` would be a non-digit word.

    `kind` is "digit", "string" or "other"; `expected` is the answer (None for a non-digit word)."""
    examples = []
    for path in sorted(EXAMPLES_DIR.glob("*.wav")):
        stem = path.stem
        if stem.startswith("string_"):
            spoken = stem.removeprefix("string_").split("_")[0]
            kind, expected = "string", spoken
            title = f"Digit string “{spoken}” (FSDD test clips joined with pauses)"
        elif stem.startswith("other_"):
            _, word, speaker = stem.split("_")
            kind, expected, title = "other", None, f"“{word}”, not a digit (speaker {speaker})"
        else:
            digit, speaker, index = stem.split("_")
            kind, expected = "digit", digit
            title = f"“{digit}” spoken by {speaker} (FSDD test recording {index})"
        examples.append(
            {"name": path.name, "path": str(path), "kind": kind, "expected": expected, "title": title}
        )
    return examples


def attribution() -> str:
    path = EXAMPLES_DIR / "ATTRIBUTION.md"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def self_test(service: SpeechService | None = None) -> dict[str, Any]:
    """Module-level alias of `SpeechService.self_test` for callers that hold no service."""
    return (service or load_service()).self_test()


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
        keep = ("label", "reason", "confidence", "top_k", "low_confidence", "latency_ms", "notes",
                "duration_s", "input_sample_rate", "input_channels")  # fmt: skip
        out = {key: result[key] for key in keep if key in result}
        if result["n_parts"] > 1:
            out["digits"] = [{"label": d["label"], "confidence": d["confidence"]} for d in result["parts"]]
        return out

    return run_per_input(args.files, handle)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(_cli(sys.argv[1:]))
