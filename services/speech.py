"""Spoken digits and voice commands: audio bytes → the words heard, in order, with confidences.

preprocess: validate + decode (services.audio_io: size and duration guards, any format soundfile or
ffmpeg can read) → mono at the model's rate → split on pauses (one part per spoken word; silence or
noise alone is "no speech detected") → loudness-normalise each part.
_forward: every part of every item through the recurrent network in one batch.
postprocess: per part, a known word (a digit 0–9 or one of the ten commands, with its `kind`), an
unknown word (the checkpoint's "other" class, or a best known word below the rejection threshold
chosen on validation data; answered with the closest known word and its confidence), or noise (the
"silence" class; left out). The label joins the words in order, a run of digits as one number
("427", "go 42"). A clip with only unknown words answers `label=None, reason="not a word I know"`;
in a longer recording unknown parts are left out with a note rather than guessed, except inside a
number: there a part whose closest known word is a digit above the threshold is read as that digit,
with a note (DIGIT_CONTEXT_MIN).

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
from models.speech import (
    PACKAGE_DIR,
    SPEECH_BUNDLE,
    DigitEnsemble,
    LogMelFrontend,
    SpeechBundle,
    word_kind,
)
from services import audio_io, limits
from services.base import Service, cached_loader
from services.errors import EmptyInputError, InputTooLargeError, NothingFoundError

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = audio_io.MAX_UPLOAD_BYTES  # 20 MB
MAX_SECONDS = audio_io.MAX_SECONDS  # 30 s, read from the header before decoding
MAX_DIGITS = 20  # parts (words) classified in one clip
MAX_BATCH = limits.SPEECH.max_batch  # clips in one predict_batch call
TOP_K = limits.SPEECH.top_k
LOW_CONFIDENCE = 0.5  # below this overall confidence the answer is flagged as a guess
NOT_A_WORD = "not a word I know"
EXAMPLES_DIR = PACKAGE_DIR / "examples"
METRICS_PATH = PACKAGE_DIR / "metrics.json"
PLAYBACK_GAP_S = 0.25  # silence between parts in the processed audio the page plays back
# A part filed as "other" in a recording whose known words are all digits (at least this many) is read
# as its closest digit when that digit clears the rejection threshold: inside a number the unsure part is
# far likelier a clipped digit than some other word. Chosen on validation recordings only, where 1 beat 2
# (`python -m models.speech.digit_context`, models/speech/experiments/digit_context.validation.json).
DIGIT_CONTEXT_MIN = 1


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

    def __init__(
        self, bundle: SpeechBundle, device: torch.device, *, digit_context_min: int | None = DIGIT_CONTEXT_MIN
    ) -> None:
        self.bundle = bundle
        self.digit_context_min = digit_context_min  # None: every part is read on its own
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
    def _read_part(self, p: np.ndarray) -> tuple[str | None, str]:
        """(the known word, or None; "word" | "unknown" | "silence") for one part's probabilities."""
        best = int(np.argmax(p))
        if best == self.bundle.silence_index:
            return None, "silence"
        if best == self.bundle.other_index:
            return None, "unknown"
        label = self.labels[best]
        if word_kind(label) is None or float(p[best]) < self.bundle.reject_threshold:
            return None, "unknown"
        return label, "word"

    def _read_parts(self, probs: np.ndarray) -> list[tuple[str | None, str]]:
        """`_read_part` for each part; then, inside a number, unknown parts whose closest known word is
        a digit above the rejection threshold are read as that digit (verdict "word from context")."""
        readings = [self._read_part(p) for p in probs]
        words = [label for label, verdict in readings if verdict == "word"]
        if (
            self.digit_context_min is None
            or len(words) < self.digit_context_min
            or any(word_kind(w) != "digit" for w in words)
        ):
            return readings
        out = []
        for p, (label, verdict) in zip(probs, readings, strict=True):
            best = self._closest_index(p)
            if (
                verdict == "unknown"
                and word_kind(self.labels[best]) == "digit"
                and float(p[best]) >= self.bundle.reject_threshold
            ):
                out.append((self.labels[best], "word from context"))
            else:
                out.append((label, verdict))
        return out

    def _closest_index(self, p: np.ndarray) -> int:
        """The class index of the known word the model found most alike."""
        words = self.bundle.word_indices
        return words[int(np.argmax(p[words]))]

    def _closest(self, p: np.ndarray) -> dict[str, Any]:
        """The known word the model found most alike, with its probability."""
        best = self._closest_index(p)
        label = self.labels[best]
        return {"label": label, "kind": word_kind(label), "confidence": round(float(p[best]), 4)}

    def postprocess(
        self, prepared: _Prepared, probs: np.ndarray, *, top_k: int = TOP_K, explain: bool = False, **_: Any
    ) -> dict[str, Any]:
        top_k = max(1, min(int(top_k), len(self.labels)))
        parts, verdicts, word_probs = [], [], []
        readings = self._read_parts(probs)
        for (start, end), p, (label, verdict) in zip(prepared.parts, probs, readings, strict=True):
            order = np.argsort(-p, kind="stable")[:top_k]
            verdicts.append(verdict)
            # a digit read from its neighbours is as sure as the network was of that digit, not of "other"
            sure = (
                float(p[self.labels.index(label)]) if verdict == "word from context" else float(p[order[0]])
            )
            word_probs.append(sure)
            part = {
                "label": label,
                "kind": word_kind(label) if label else None,
                "confidence": round(sure, 4),
                "top_k": [{"label": self.labels[int(i)], "score": round(float(p[i]), 4)} for i in order],
                "start_s": round(float(start) / self.sample_rate, 3),
                "end_s": round(float(end) / self.sample_rate, 3),
            }
            if verdict == "unknown":
                part["reason"] = NOT_A_WORD
                part["closest"] = self._closest(p)
            elif verdict == "silence":
                part["reason"] = "no speech"
            elif verdict == "word from context":
                part["reason"] = "read as a digit because the words around it are digits"
            parts.append(part)
        if all(v == "silence" for v in verdicts):
            # The detector heard something, but the network hears only noise: the detector's answer.
            raise NothingFoundError(audio_io.NO_SPEECH)
        kept = [i for i, v in enumerate(verdicts) if v in ("word", "word from context")]
        unknown = [i for i, v in enumerate(verdicts) if v == "unknown"]
        notes = []
        if not kept:
            # Speech, but no known word in it: say so, and which known word it was closest to.
            first = unknown[0]
            result = {
                "label": None,
                "kind": None,
                "reason": NOT_A_WORD,
                "closest": parts[first]["closest"],
                "confidence": round(
                    float(np.mean([_not_a_word_score(probs[i], self.bundle) for i in unknown])), 4
                ),
                "top_k": parts[first]["top_k"] if len(parts) == 1 else [],
                "low_confidence": False,
            }
            notes.append("heard speech, but not a word I know (a digit 0–9 or a command)")
        else:
            words = [parts[i]["label"] for i in kept]
            kinds = {parts[i]["kind"] for i in kept}
            label = join_words(words)
            confidence = float(np.prod([word_probs[i] for i in kept]))
            if len(kept) == 1 and len(parts) == 1:
                top = parts[0]["top_k"]
            elif kinds == {"digit"}:
                digit_columns = [i for i, name in enumerate(self.labels) if word_kind(name) == "digit"]
                top = [
                    {"label": text, "score": round(score, 4)}
                    for text, score in _best_strings(
                        probs[kept][:, digit_columns], [self.labels[i] for i in digit_columns], top_k
                    )
                ]
            else:
                top = [{"label": label, "score": round(confidence, 4)}]
            for verdict, what in (
                ("unknown", "were not a word I know and were left out"),
                ("silence", "were only noise and were left out"),
                (
                    "word from context",
                    "sounded unfamiliar but were read as the closest digit, as the words around are digits",
                ),
            ):
                chosen = [i for i, v in enumerate(verdicts) if v == verdict]
                if chosen:
                    where = ", ".join(f"{parts[i]['start_s']:.2f}–{parts[i]['end_s']:.2f} s" for i in chosen)
                    notes.append(f"{len(chosen)} part(s) {what} ({where})")
            result = {
                "label": label,
                "kind": kinds.pop() if len(kinds) == 1 else "mixed",
                "confidence": round(confidence, 4),
                "top_k": top,
                "low_confidence": confidence < LOW_CONFIDENCE,
            }
        digits = [parts[i] for i in kept if parts[i]["kind"] == "digit"]
        result.update({
            "words": [{k: parts[i][k] for k in ("label", "kind", "confidence", "start_s", "end_s")} for i in kept],
            "commands": [parts[i]["label"] for i in kept if parts[i]["kind"] == "command"],
            "n_digits": len(digits), "n_parts": len(parts), "digits": digits,
            "parts": parts, "notes": notes, **prepared.info,
        })  # fmt: skip
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
            "frame_s": self.bundle.features.frame_seconds,
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
            "vocabulary": self.vocabulary(),
            "features": {"kind": "log-mel spectrogram", **self.bundle.describe()["features"]},
            "sample_rate": self.sample_rate,
            "reject_threshold": self.bundle.reject_threshold,
            "training": self.bundle.training,
            "metrics": metrics,
            "limits": {
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "max_seconds": MAX_SECONDS,
                "max_digits": MAX_DIGITS,
                "max_words": MAX_DIGITS,
                "max_batch": MAX_BATCH,
            },
        }

    def vocabulary(self) -> dict[str, Any]:
        """The words this checkpoint knows, by kind, and what it answers for anything else."""
        return {
            "digits": [label for label in self.labels if word_kind(label) == "digit"],
            "commands": [label for label in self.labels if word_kind(label) == "command"],
            "unknown_word": {"label": None, "reason": NOT_A_WORD}
            if self.bundle.other_index is not None or self.bundle.reject_threshold > 0
            else None,
            "no_speech": audio_io.NO_SPEECH,
        }

    def self_test(self) -> dict[str, Any]:
        """Recognise the first bundled example; the home page shows the result."""
        example = next(e for e in example_inputs() if e["kind"] == "digit")
        result = self.predict(Path(example["path"]).read_bytes())
        heard = f"heard “{result['label']}” ({result['confidence']:.0%})" if result["label"] else NOT_A_WORD
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


def _not_a_word_score(p: np.ndarray, bundle: SpeechBundle) -> float:
    """How sure the model is that a part is no known word: P(other), or 1 − the best known word."""
    if bundle.other_index is not None and int(np.argmax(p)) == bundle.other_index:
        return float(p[bundle.other_index])
    return 1.0 - float(np.max(p[bundle.word_indices]))


def join_words(words: list[str]) -> str:
    """The answer text: a run of digits reads as one number ("427"), other words are spaced
    ("go 42 stop")."""
    pieces: list[str] = []
    for word in words:
        if pieces and word.isdigit() and pieces[-1].isdigit():
            pieces[-1] += word
        else:
            pieces.append(word)
    return " ".join(pieces)


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


def _build(bundle: SpeechBundle = SPEECH_BUNDLE) -> SpeechService:
    """Load the weights; the returned service is immutable and thread-safe."""
    service = SpeechService(bundle, select_device())
    # Warm-up: the first forward and backward pay for lazy initialisation; do it here, not on a user.
    warm = np.sin(2 * np.pi * 150 * np.arange(4_000) / service.sample_rate).astype(np.float32) * 0.1
    service._probabilities([warm])
    service._explain([warm])
    return service


load_service = cached_loader(_build)


def example_inputs() -> list[dict[str, str]]:
    """Bundled examples (see examples/ATTRIBUTION.md): FSDD test-split digits (CC BY-SA 4.0), a digit
    string made from them, and Speech Commands commands and an unknown word (CC BY 4.0) from speakers
    held out of training. Files are named `<digit>_<speaker>_<n>`, `string_<digits>_<speaker>`,
    `command_<word>_<speaker>` and `other_<word>_<speaker>`.

    `kind` is "digit", "string", "command" or "other"; `expected` is the answer (None for an unknown word)."""
    examples = []
    for path in sorted(EXAMPLES_DIR.glob("*.wav")):
        stem = path.stem
        if stem.startswith("string_"):
            spoken = stem.removeprefix("string_").split("_")[0]
            kind, expected = "string", spoken
            title = f"Digit string “{spoken}” (FSDD test clips joined with pauses)"
        elif stem.startswith("command_"):
            _, word, speaker = stem.split("_")
            kind, expected = "command", word
            title = f"Command “{word}” (Speech Commands speaker {speaker}, not trained on)"
        elif stem.startswith("other_"):
            _, word, speaker = stem.split("_")
            kind, expected = "other", None
            title = f"“{word}”, a word the model does not know (Speech Commands speaker {speaker})"
        else:
            digit, speaker, index = stem.split("_")
            kind, expected = "digit", digit
            title = f"“{digit}” spoken by {speaker} (FSDD test recording {index})"
        examples.append(
            {"name": path.name, "path": str(path), "kind": kind, "expected": expected, "title": title}
        )
    return examples


def self_test(service: SpeechService | None = None) -> dict[str, Any]:
    """Module-level alias of `SpeechService.self_test` for callers that hold no service."""
    return (service or load_service()).self_test()


def _cli(argv: list[str]) -> int:
    import argparse

    from services.cli import read_file_bytes, run_per_input

    parser = argparse.ArgumentParser(
        prog="python -m services.speech",
        description="Recognise spoken digits and voice commands in audio files (WAV, FLAC, OGG, MP3; "
        "M4A/AAC with ffmpeg).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--top-k", type=int, default=TOP_K)
    args = parser.parse_args(argv)
    service = load_service()

    def handle(path: str) -> dict[str, Any]:
        result = service.predict(read_file_bytes(path, MAX_UPLOAD_BYTES), top_k=args.top_k)
        keep = ("label", "kind", "reason", "closest", "confidence", "top_k", "low_confidence", "latency_ms",
                "notes", "duration_s", "input_sample_rate", "input_channels")  # fmt: skip
        out = {key: result[key] for key in keep if key in result}
        if result["n_parts"] > 1:
            out["digits"] = [{"label": d["label"], "confidence": d["confidence"]} for d in result["parts"]]
            out["words"] = [{"label": w["label"], "kind": w["kind"]} for w in result["words"]]
        return out

    return run_per_input(args.files, handle)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(_cli(sys.argv[1:]))
