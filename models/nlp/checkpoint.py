"""Checkpoint files: what fine-tuning changed, exported compactly, and loaded back onto the base model."""

from __future__ import annotations

import logging
import time

import torch
from torch import nn

from models.nlp.bundle import SST2_SENTIMENT, FineTuneSettings, SentimentBundle
from models.nlp.modules import build_trainable_classifier

logger = logging.getLogger(__name__)


def _quantised_delta(tuned: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tuned - base) as int8 with a float32 scale per row: 4x smaller than float32, and the rounding
    error (at most half a step of a row's largest change) is far below the size of the change itself."""
    delta = tuned - base
    scale = delta.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # (rows, 1)
    return torch.round(delta / scale).clamp(-127, 127).to(torch.int8), scale.float()


DELTA_SUFFIX, SCALE_SUFFIX = ".delta_int8", ".delta_scale"


def _stored_as_delta(name: str, param: torch.Tensor) -> bool:
    """Weight matrices are stored as their int8 change; the new head has no base to differ from."""
    return param.dim() == 2 and not name.startswith("classifier")


def _checkpoint_keys(model: nn.Module) -> set[str]:
    keys: set[str] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        keys |= {name + DELTA_SUFFIX, name + SCALE_SUFFIX} if _stored_as_delta(name, param) else {name}
    return keys


def export_finetuned_tensors(model: nn.Module, settings: FineTuneSettings) -> dict[str, torch.Tensor]:
    """What a checkpoint file holds: only what fine-tuning changed, on CPU.

    For each trained weight matrix its change from the pretrained one in int8 (+ per-row scales);
    vectors (biases, LayerNorms) and the new head in float32.
    """
    # Which parameters a full fine-tune trains is decided by a fresh trainable model, so a plain
    # (e.g. averaged, frozen) classifier exports the same keys as the one training just updated.
    tuned = dict(model.named_parameters())
    out: dict[str, torch.Tensor] = {}
    for name, base in build_trainable_classifier(settings).named_parameters():
        if not base.requires_grad:
            continue
        value = tuned[name].detach().to("cpu", torch.float32)
        if _stored_as_delta(name, value):
            out[name + DELTA_SUFFIX], out[name + SCALE_SUFFIX] = _quantised_delta(value, base.detach())
        else:
            out[name] = value.contiguous().clone()
    return out


def load_sentiment_model(
    bundle: SentimentBundle = SST2_SENTIMENT, device: torch.device | None = None
) -> nn.Module:
    """Pretrained base + the committed fine-tuned tensors -> a plain classifier in eval mode on `device`.

    The dequantised int8 change is added to each weight matrix, so inference runs an ordinary BERT module.
    """
    from safetensors.torch import load_file

    from models.runtime import select_device

    device = device or select_device()
    started = time.perf_counter()
    if not bundle.weights.is_file():
        raise FileNotFoundError(
            f"fine-tuned weights not found at {bundle.weights}; run `python -m models train nlp --data-dir DIR`"
        )
    settings = bundle.finetune
    model = build_trainable_classifier(settings, num_labels=len(bundle.labels))
    state = load_file(str(bundle.weights))
    expected = _checkpoint_keys(model)
    if set(state) != expected:
        raise RuntimeError(
            f"{bundle.weights.name} does not match the fine-tuning settings {settings}: "
            f"missing {sorted(expected - set(state))[:3]}, unexpected {sorted(set(state) - expected)[:3]}"
        )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name + DELTA_SUFFIX in state:
                delta = state[name + DELTA_SUFFIX].float() * state[name + SCALE_SUFFIX]
                param.add_(delta.to(param.dtype))
            elif name in state:
                param.copy_(state[name])
    model.eval().to(device)
    for param in model.parameters():
        param.requires_grad_(False)
    logger.info("sentiment model loaded in %.1f s on %s", time.perf_counter() - started, device)
    return model
