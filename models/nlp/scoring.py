"""Reading labelled sentiment text and scoring a classifier on it: logits, accuracy, calibration.

Shared by training (validation after every epoch, the temperature of the shipped file) and by
`python -m models evaluate nlp` (SST-2 dev and the test-only sets).

Batches are built from texts of similar length and padded only to the longest text in the batch
(`collate`): most texts here are short, so this is the main speed trick on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from models.nlp.bundle import LABELS

if TYPE_CHECKING:
    from models.nlp.domains import DomainSplits, LabelledTexts


def read_labelled_tsv(path: Path, label_first: bool) -> tuple[list[str], list[int]]:
    """A TSV of 0/1 labels and sentences with the header `label<TAB>sentence` (label_first) or
    `sentence<TAB>label` -> (texts, labels). The label is split off its own side, so a tab inside a
    sentence stays in the sentence."""
    columns = ["label", "sentence"] if label_first else ["sentence", "label"]
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header[:2] != columns:
            raise ValueError(f"{path}: expected header '{'<TAB>'.join(columns)}', got {header}")
        for number, line in enumerate(handle, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            if label_first:
                label, _, text = line.partition("\t")
            else:
                text, _, label = line.rpartition("\t")
            if label not in ("0", "1"):
                raise ValueError(f"{path}:{number}: label must be 0 or 1, got {label!r}")
            texts.append(text.strip())
            labels.append(int(label))
    return texts, labels


def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    """A GLUE SST-2 TSV (header `sentence<TAB>label`) -> (texts, labels)."""
    return read_labelled_tsv(path, label_first=False)


def collate(encoded: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists to the longest in the batch -> input_ids (B, T), attention_mask (B, T)."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


def head_and_tail(ids: Sequence[int], budget: int) -> list[int]:
    """Token ids [CLS] ... [SEP] cut to `budget`: [CLS], the first half, the last half, [SEP].

    Ids within the budget are returned unchanged.
    """
    if len(ids) <= budget:
        return list(ids)
    inner = budget - 2
    head = inner // 2
    tail = inner - head
    return [ids[0], *ids[1 : 1 + head], *ids[len(ids) - 1 - tail : len(ids) - 1], ids[-1]]


@torch.inference_mode()
def logits_of_ids(model, tokenizer, encoded: Sequence[list[int]], batch_size: int = 32) -> torch.Tensor:
    """Raw logits (N, 2) of token-id lists already cut to length, batched by length."""
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.zeros((len(encoded), len(LABELS)))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask = collate([encoded[i] for i in idx], tokenizer.pad_token_id)
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        out[idx] = logits.float().cpu()
    return out


def predict_logits(
    model, tokenizer, texts: Sequence[str], max_length: int = 128, batch_size: int = 64
) -> torch.Tensor:
    """Raw logits for each text, (N, 2); texts longer than max_length tokens are truncated."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return logits_of_ids(model, tokenizer, encoded, batch_size)


def predict_proba(model, tokenizer, texts: Sequence[str], max_length: int = 128) -> torch.Tensor:
    """P(label) for each text, (N, 2) (temperature 1: only the arg-max matters for accuracy)."""
    return torch.softmax(predict_logits(model, tokenizer, texts, max_length), dim=-1)


def fit_temperature(logits: torch.Tensor, labels: Sequence[int]) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T).

    A dense search over log T in [1/8, 16] (one scalar: no optimiser to tune, same answer every run).
    Dividing by T never changes which label wins, so accuracy is untouched.
    """
    target = torch.as_tensor(list(labels))
    grid = torch.exp(torch.linspace(math.log(0.125), math.log(16.0), 401))
    losses = torch.stack([torch.nn.functional.cross_entropy(logits / t, target) for t in grid])
    return round(float(grid[int(losses.argmin())]), 4)


def expected_calibration_error(probs: torch.Tensor, labels: Sequence[int], bins: int = 10) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence|, weighted by the bin's share."""
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == torch.as_tensor(list(labels))).float()
    edges = torch.linspace(1.0 / probs.shape[1], 1.0, bins + 1)
    bin_of = torch.bucketize(confidence, edges[1:-1], right=False)  # 0 .. bins-1
    error = 0.0
    for b in range(bins):
        members = bin_of == b
        if members.any():
            share = members.float().mean()
            error += float(share * (correct[members].mean() - confidence[members].mean()).abs())
    return round(error, 4)


def evaluate_model(model, tokenizer, texts: Sequence[str], labels: Sequence[int]) -> dict:
    """Accuracy, confusion matrix (rows = true, cols = predicted) and per-class F1."""
    was_training = model.training
    model.eval()
    preds = predict_proba(model, tokenizer, texts).argmax(dim=-1).tolist()
    if was_training:
        model.train()
    n = len(LABELS)
    matrix = [[0] * n for _ in range(n)]
    for truth, pred in zip(labels, preds, strict=True):
        matrix[truth][pred] += 1
    correct = sum(matrix[i][i] for i in range(n))
    f1 = {}
    for k, label in enumerate(LABELS):
        tp = matrix[k][k]
        fp = sum(matrix[i][k] for i in range(n)) - tp
        fn = sum(matrix[k]) - tp
        f1[label] = round(2 * tp / max(1, 2 * tp + fp + fn), 4)
    return {
        "accuracy": round(correct / max(1, len(labels)), 4),
        "n": len(labels),
        "labels": list(LABELS),
        "confusion_matrix": matrix,
        "f1": f1,
    }


def _accuracy(logits: torch.Tensor, labels: Sequence[int]) -> float:
    return round(float((logits.argmax(-1) == torch.tensor(list(labels))).float().mean()), 4)


def _with_macro(accuracy: dict[str, float]) -> dict[str, float]:
    """The per-source accuracies and their unweighted mean (`macro`), the number every choice uses."""
    return {**accuracy, "macro": round(sum(accuracy.values()) / max(1, len(accuracy)), 4)}


def validation_scores(
    model, tokenizer, splits: DomainSplits, max_length: int, long_text_tokens: int
) -> dict[str, float]:
    """Accuracy per validation source and their mean (`macro`); sentences are truncated at max_length,
    whole reviews (`long_texts` sources) read as their first and last tokens (`head_and_tail`)."""
    was_training = model.training
    model.eval()
    long_keys = {key for key, source in splits.sources.items() if source.long_texts}
    accuracy = {}
    for key, part in splits.validation.items():
        if key in long_keys:
            encoded = [head_and_tail(e, long_text_tokens) for e in tokenizer(part.texts)["input_ids"]]
            logits = logits_of_ids(model, tokenizer, encoded)
        else:
            logits = predict_logits(model, tokenizer, part.texts, max_length=max_length)
        accuracy[key] = _accuracy(logits, part.labels)
    if was_training:
        model.train()
    return _with_macro(accuracy)


def calibration_on(model, tokenizer, validation: Mapping[str, LabelledTexts]) -> dict:
    """Temperature fitted on the pooled validation rows; ECE per source at T = 1 and at the fitted T;
    and (from the same logits) the accuracy per source with their unweighted mean."""
    logits = {key: predict_logits(model, tokenizer, part.texts) for key, part in validation.items()}
    pooled = torch.cat(list(logits.values()))
    pooled_labels = [y for part in validation.values() for y in part.labels]
    temperature = fit_temperature(pooled, pooled_labels)
    per_source = {
        key: {
            "ece_temperature_1": expected_calibration_error(
                torch.softmax(logits[key], -1), validation[key].labels
            ),
            "ece": expected_calibration_error(
                torch.softmax(logits[key] / temperature, -1), validation[key].labels
            ),
        }
        for key in validation
    }
    accuracy = _with_macro({key: _accuracy(logits[key], part.labels) for key, part in validation.items()})
    pooled_ece = expected_calibration_error(torch.softmax(pooled / temperature, -1), pooled_labels)
    return {
        "temperature": temperature,
        "validation_ece": pooled_ece,
        "validation_ece_per_source": per_source,
        "validation_accuracy": accuracy,
    }
