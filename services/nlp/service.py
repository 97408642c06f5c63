"""NlpService: sentiment (with mixed opinions and word highlights), similarity and summaries.

    preprocess   validate the text (services.nlp.inputs) and find its opinion units: its sentences,
                 or the clauses of its only sentence ("great food, rude staff")
    _forward     one tokenizer call and one batched classifier pass for every text's windows and
                 units; integrated gradients per text when asked to explain
    postprocess  the whole text's label (the length-weighted mean over windows of a long text), each
                 unit's label, and an overall reading that is "mixed" when confident units disagree

`label` is always positive or negative (the whole text read at once); `reading` is the headline a
person should see, and becomes "mixed" for "great food, rude staff" instead of a confident label.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from models.nlp import PACKAGE_DIR, SST2_SENTIMENT, SentimentBundle
from models.nlp.card import strongest_lean
from services.base import Service, cached_loader
from services.errors import NothingFoundError
from services.nlp.classifier import BF16_MIN_TOKENS, SentimentClassifier, Window
from services.nlp.embeddings import SentenceEmbedder
from services.nlp.explain import Explanation, explain_text
from services.nlp.inputs import (
    MAX_BATCH_TEXTS,
    MAX_CHARS,
    MAX_READINGS,
    MAX_UPLOAD_BYTES,
    OpinionUnits,
    opinion_units,
    validate_text,
)

logger = logging.getLogger(__name__)

LOW_CONFIDENCE = 0.75  # below this the answer is flagged as a low-confidence guess
# A unit counts towards an opinion when its label has at least this probability; the text reads as
# mixed when both opinions have such units and the smaller side holds at least MIXED_MIN_SHARE of them
# (one grumble among ten happy sentences is not a mixed review).
MIXED_MIN_CONFIDENCE = 0.7
MIXED_MIN_SHARE = 0.25
EXAMPLES_DIR = PACKAGE_DIR / "examples"
METRICS_PATH = PACKAGE_DIR / "metrics.json"
TRAIN_RECORD_PATH = PACKAGE_DIR / "sentiment.train.json"


@dataclass
class Prepared:
    """A validated text and the character spans of its opinion units."""

    text: str
    notes: list[str] = field(default_factory=list)
    units: OpinionUnits = field(default_factory=lambda: OpinionUnits("clause", []))


@dataclass(frozen=True)
class Scored:
    """A span of the text with its calibrated probabilities (one per label)."""

    start: int
    end: int
    n_tokens: int
    probs: list[float]


@dataclass(frozen=True)
class Output:
    windows: list[Scored]  # the whole text, cut to the model window when long
    units: list[Scored]  # sentences or clauses, read one by one
    n_tokens: int
    explanation: Explanation | None = None


class NlpService(Service):
    """Immutable after construction; one instance serves every thread of the process."""

    task: ClassVar[str] = "nlp"
    max_batch: ClassVar[int] = MAX_BATCH_TEXTS

    def __init__(self, bundle: SentimentBundle = SST2_SENTIMENT, device: torch.device | None = None):
        started = time.perf_counter()
        self.bundle = bundle
        self.classifier = SentimentClassifier(bundle, device)
        self.embedder = SentenceEmbedder(self.classifier)
        self.device = self.classifier.device
        self.labels = self.classifier.labels
        self.window = self.classifier.window
        self.temperature = self.classifier.temperature
        self.load_ms = round((time.perf_counter() - started) * 1000, 1)
        logger.info("nlp service ready in %.0f ms on %s", self.load_ms, self.device)

    # ---- public calls (the contract) ------------------------------------------------------------
    def predict(self, text: Any, *, explain: bool = False) -> dict[str, Any]:
        """Sentiment of one text; with explain=True also `words` (integrated gradients) and `text`."""
        return super().predict(text, explain=explain)

    def predict_batch(self, texts: Sequence[Any], *, explain: bool = False) -> list[dict[str, Any]]:
        """Sentiment of many texts in one batched pass; a bad text gets an error entry in its slot."""
        return super().predict_batch(texts, explain=explain)

    def similarity(self, a: Any, b: Any) -> dict[str, Any]:
        return self.embedder.similarity(a, b)

    def summarize(self, text: Any, n_sentences: int = 3) -> dict[str, Any]:
        return self.embedder.summarize(text, n_sentences)

    # ---- the three stages ---------------------------------------------------------------------
    def preprocess(self, item: Any, **_: Any) -> Prepared:
        text, notes = validate_text(item)
        return Prepared(text, notes, opinion_units(text))

    def _forward(self, prepared: Sequence[Prepared], explain: bool = False, **_: Any) -> list[Output]:
        classifier = self.classifier
        unit_texts = [p.text[s:e] for p in prepared for s, e in p.units.spans]
        encoded = classifier.encode([p.text for p in prepared] + unit_texts)
        rows: list[list[int]] = []
        windows: list[list[Window]] = []
        for item, enc in zip(prepared, encoded, strict=False):
            windows.append(classifier.windows(item.text, enc))
            rows += [w.ids for w in windows[-1]]
        unit_encoded = iter(encoded[len(prepared) :])
        unit_rows: list[list[list[int]]] = []
        for item in prepared:
            unit_rows.append([next(unit_encoded).ids[: self.window] for _ in item.units.spans])
            rows += [ids for ids in unit_rows[-1] if ids]
        probs = iter(classifier.probabilities(rows).tolist())
        outputs = []
        whole = [
            [Scored(w.start, w.end, len(w.ids), next(probs)) for w in text_windows]
            for text_windows in windows
        ]
        for item, enc, text_windows, ids_per_unit in zip(prepared, encoded, whole, unit_rows, strict=False):
            units = [
                Scored(s, e, len(ids), next(probs))
                for (s, e), ids in zip(item.units.spans, ids_per_unit, strict=True)
                if ids
            ]
            explanation = (
                explain_text(classifier, item.text, [(w.start, w.end) for w in text_windows])
                if explain and text_windows
                else None
            )
            outputs.append(Output(text_windows, units, len(enc.ids), explanation))
        return outputs

    def postprocess(
        self, prepared: Prepared, output: Output, explain: bool = False, **_: Any
    ) -> dict[str, Any]:
        if not output.windows:
            raise NothingFoundError("The text has no words the model can read.")
        weights = [max(1, w.n_tokens) for w in output.windows]
        total = sum(weights)
        scores = {
            label: sum(w.probs[i] * n for w, n in zip(output.windows, weights, strict=True)) / total
            for i, label in enumerate(self.labels)
        }
        label = max(scores, key=scores.get)
        confidence = scores[label]
        units = [self._reading(prepared.text, unit) for unit in output.units]
        mixed = is_mixed(units)
        notes = list(prepared.notes)
        result: dict[str, Any] = {
            "label": label,
            "confidence": round(confidence, 4),
            "top_k": [
                {"label": name, "score": round(score, 4)}
                for name, score in sorted(scores.items(), key=lambda kv: -kv[1])
            ],
            "low_confidence": bool(confidence < LOW_CONFIDENCE or prepared.notes or mixed),
            "reading": "mixed" if mixed else label,
            "mixed": mixed,
            "chunked": len(output.windows) > 1,
            "n_chunks": len(output.windows),
            "n_tokens": output.n_tokens,
            "notes": notes,
        }
        if len(output.windows) > 1:
            notes.append(
                f"The text is longer than the model window ({self.window} word pieces), so it was split "
                f"into {len(output.windows)} parts; the answer is the length-weighted mean of their probabilities."
            )
            result["chunks"] = [
                {**self._reading(prepared.text, w), "n_tokens": w.n_tokens} for w in output.windows
            ]
        if units:
            result["sentences" if prepared.units.kind == "sentence" else "clauses"] = units
        if prepared.units.truncated:
            notes.append(
                f"Sentence-by-sentence readings cover the first {MAX_READINGS} sentences of "
                f"{MAX_READINGS + prepared.units.truncated}."
            )
        if mixed:
            counts = {name: sum(u["label"] == name for u in units) for name in self.labels}
            notes.append(
                f"Mixed opinions: {counts.get('positive', 0)} positive and {counts.get('negative', 0)} negative "
                f"{prepared.units.kind}s; read as a whole the text leans {label}."
            )
        elif confidence < LOW_CONFIDENCE:
            notes.append(f"Low confidence ({confidence:.0%}): the text may be mixed, neutral or off-topic.")
        if explain and output.explanation is not None:
            result["text"] = prepared.text
            result["words"] = [w.as_dict() for w in output.explanation.words]
            result["attribution"] = output.explanation.as_dict()
            if output.explanation.total_chunks > output.explanation.explained_chunks:
                notes.append(
                    f"Word highlights cover the first {output.explanation.explained_chunks} of "
                    f"{output.explanation.total_chunks} parts of this long text."
                )
        return result

    def _reading(self, text: str, scored: Scored) -> dict[str, Any]:
        best = max(range(len(self.labels)), key=lambda i: scored.probs[i])
        return {
            "text": text[scored.start : scored.end],
            "start": scored.start,
            "end": scored.end,
            "label": self.labels[best],
            "confidence": round(scored.probs[best], 4),
        }

    def warm_up(self) -> None:
        """Build the PyTorch classifier (explanations) and the base encoder (similarity, summaries)."""
        self.classifier.packed_model  # noqa: B018 - properties that build on first access (the model too)
        self.embedder.encoder  # noqa: B018

    # ---- facts --------------------------------------------------------------------------------
    def reference_model(self) -> torch.nn.Module:
        """The merged full-precision classifier, e.g. to compare with a Hugging Face pipeline."""
        return self.classifier.model

    def reference_tokenizer(self):
        """The Hugging Face tokenizer of the base model (the service itself reads tokenizer.json directly)."""
        return self.bundle.get_tokenizer()

    def _runtime(self) -> str:
        classifier = self.classifier
        if classifier.onnx is None:
            return "PyTorch"
        onnx = f"ONNX Runtime (graph from {classifier.onnx_source})"
        if classifier.bf16_batches:
            return f"{onnx}; batches of {BF16_MIN_TOKENS}+ word pieces in PyTorch with bf16 matrix products (AMX)"
        return onnx

    def info(self) -> dict[str, Any]:
        """Card facts read from the loaded model, the weights' metadata, the training record and
        metrics.json (nothing typed by hand)."""
        model = self.classifier.model
        config = model.config
        metrics = json.loads(METRICS_PATH.read_text()) if METRICS_PATH.is_file() else {}
        training = json.loads(TRAIN_RECORD_PATH.read_text()) if TRAIN_RECORD_PATH.is_file() else {}
        metadata = _weights_metadata(self.bundle.weights)
        return {
            "task": self.task,
            "name": "all-MiniLM-L6-v2 sentiment classifier",
            "base": config.name_or_path.rsplit("/", 1)[-1] if config.name_or_path else "all-MiniLM-L6-v2",
            "architecture": f"BERT encoder, {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
            f"{config.num_attention_heads} heads, mean-pooled linear head",
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "encoder_parameters": int(sum(p.numel() for p in self.embedder.encoder.parameters())),
            "weights": self.bundle.weights.name,
            "weights_bytes": self.bundle.weights.stat().st_size,
            "fine_tuning": self.bundle.finetune.describe(),
            "stage2": json.loads(metadata["stage2"]) if "stage2" in metadata else None,
            "recipe": json.loads(metadata["mixed"]) if "mixed" in metadata else None,
            "averaged_runs": len(json.loads(metadata.get("soup_of", "[]"))) or 1,
            "training_rows": training.get("train_rows"),
            "temperature": self.temperature,
            "labels": list(self.labels),
            "window_tokens": self.bundle.max_length,
            "features": {
                "tokenizer": "WordPiece, uncased, 30,522 pieces",
                "max_tokens": self.bundle.max_length,
            },
            "metrics": metrics,
            "mistakes_lean": strongest_lean(metrics.get("test_sets") or {}),
            "device": str(self.device),
            "runtime": self._runtime(),
            "load_ms": self.load_ms,
            "limits": {
                "max_chars": MAX_CHARS,
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "max_batch_texts": MAX_BATCH_TEXTS,
                "max_batch": self.max_batch,
            },
        }

    def self_test(self) -> dict[str, Any]:
        """Classify the bundled positive review; the home page shows the answer."""
        text = example_inputs()["sentiment"]["Positive review"]
        result = self.predict(text)
        return {
            "input": f"review: “{text[:60]}…”" if len(text) > 60 else f"review: “{text}”",
            "output": f"{result['reading']} ({result['confidence']:.0%})",
            "latency_ms": float(result["latency_ms"]),
        }


def is_mixed(units: Sequence[dict[str, Any]]) -> bool:
    """Confident units on both sides, and the smaller side at least MIXED_MIN_SHARE of them."""
    confident = [u["label"] for u in units if u["confidence"] >= MIXED_MIN_CONFIDENCE]
    if not confident:
        return False
    smaller = min(confident.count("positive"), confident.count("negative"))
    return smaller > 0 and smaller / len(confident) >= MIXED_MIN_SHARE


def _weights_metadata(weights: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        return dict(handle.metadata() or {})


def example_inputs() -> dict[str, Any]:
    """The bundled examples: sentiment texts, a similarity pair, an article, a batch file."""

    def read(name: str) -> str:
        return (EXAMPLES_DIR / name).read_text(encoding="utf-8").strip()

    return {
        "sentiment": {
            "Positive review": read("positive_review.txt"),
            "Negative review": read("negative_review.txt"),
            "Mixed opinions (hotel)": read("mixed_review.txt"),
            "Great food, rude staff": "Great food, rude staff.",
            "Long review (split into parts)": read("long_review.txt"),
        },
        "similarity": tuple(read("similarity_pair.txt").split("\n\n", 1)),
        "article": read("article.txt"),
        "batch_file": EXAMPLES_DIR / "batch_reviews.csv",
    }


def _build() -> NlpService:
    return NlpService()


load_service = cached_loader(_build)
