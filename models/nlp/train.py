"""Fine-tuning and evaluation of the SST-2 sentiment classifier (all-MiniLM-L6-v2, full or LoRA).

The shipped model is a uniform "model soup" (Wortsman et al., 2022): two full fine-tunes that share
the initialisation (same seed: same head, same data order) but use different learning rates, with
every weight averaged. The average is one model of the same size and speed as each run.

The speed trick on a CPU: SST-2 train rows are mostly short phrases (median ~8 tokens), so batches
are built from texts of similar length and padded only to the longest text in the batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from models.nlp import (
    LABELS,
    SST2_SENTIMENT,
    FineTuneSettings,
    build_trainable_classifier,
    export_finetuned_tensors,
    load_sentiment_model,
    load_tokenizer,
)
from models.runtime import select_device, set_seed

logger = logging.getLogger(__name__)


SOUP_LRS = (1e-4, 5e-5)  # encoder learning rates of the averaged runs (head: TrainConfig.head_lr)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3  # dev accuracy still rose in epoch 3 as the step size decayed (see MODEL_CARD)
    batch_size: int = 32
    lr: float = 1e-4  # encoder (full fine-tune); LoRA runs want about 8e-4
    head_lr: float = 1e-3  # fresh classifier head
    weight_decay: float = 0.01
    warmup_frac: float = 0.06  # linear warm-up, then linear decay to 0
    max_length: int = 64  # longest SST-2 train phrase is ~60 wordpieces
    max_train: int | None = None  # cap on training rows (tests, smoke runs)
    seed: int = 13
    log_every: int = 100


def read_sst2(path: Path) -> tuple[list[str], list[int]]:
    """A GLUE SST-2 TSV with header `sentence<TAB>label` -> (texts, labels)."""
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header[:2] != ["sentence", "label"]:
            raise ValueError(f"{path}: expected header 'sentence<TAB>label', got {header}")
        for number, line in enumerate(handle, start=2):
            line = line.rstrip("\n")
            if not line:
                continue
            text, _, label = line.rpartition("\t")
            if label not in ("0", "1"):
                raise ValueError(f"{path}:{number}: label must be 0 or 1, got {label!r}")
            texts.append(text.strip())
            labels.append(int(label))
    return texts, labels


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 50
) -> list[list[int]]:
    """Shuffle, then sort by length inside pools of `pool` batches, cut batches, shuffle the batches.

    Every row appears once per epoch; padding waste is small because neighbours have similar lengths.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * pool
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def warmup_linear_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly over the first `warmup_frac` of the steps, then falling linearly to
    zero at `total_steps` (the BERT fine-tuning schedule; every language training stage uses it)."""
    warmup = max(1, int(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def collate(encoded: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists to the longest in the batch -> input_ids (B, T), attention_mask (B, T)."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


@torch.inference_mode()
def predict_logits(
    model, tokenizer, texts: Sequence[str], max_length: int = 128, batch_size: int = 64
) -> torch.Tensor:
    """Raw logits for each text, (N, 2), batched by length; texts longer than max_length are truncated
    here (evaluation only: SST-2 dev sentences are at most ~60 tokens)."""
    device = next(model.parameters()).device
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.zeros((len(encoded), len(LABELS)))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids, mask = collate([encoded[i] for i in idx], tokenizer.pad_token_id)
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        out[idx] = logits.float().cpu()
    return out


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


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train(
    data_dir: Path,
    out_path: Path = SST2_SENTIMENT.weights,
    config: TrainConfig = TrainConfig(),
    settings: FineTuneSettings = SST2_SENTIMENT.finetune,
    eval_dev: bool = True,
    progress: Callable[[str], None] = _print_progress,
) -> dict:
    """Fine-tune on data_dir/train.tsv; after every epoch save the weights and score data_dir/dev.tsv."""
    from safetensors.torch import save_file

    set_seed(config.seed)
    device = select_device()
    texts, labels = read_sst2(Path(data_dir) / "train.tsv")
    if config.max_train is not None and config.max_train < len(texts):
        pick = random.Random(config.seed).sample(range(len(texts)), config.max_train)
        texts, labels = [texts[i] for i in pick], [labels[i] for i in pick]
    dev = (
        read_sst2(Path(data_dir) / "dev.tsv") if eval_dev and (Path(data_dir) / "dev.tsv").is_file() else None
    )

    tokenizer = load_tokenizer()
    encoded = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    model = build_trainable_classifier(settings).to(device)
    model.train()
    head = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" in n]
    body = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" not in n]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(texts) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = warmup_linear_schedule(optimizer, total_steps, config.warmup_frac)
    n_trainable = sum(p.numel() for p in body + head)
    progress(
        f"training on {len(texts)} texts, {config.epochs} epochs x {steps_per_epoch} steps, "
        f"{n_trainable:,} trainable parameters, device {device}, {torch.get_num_threads()} threads"
    )
    rng = random.Random(config.seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    history = []
    started = time.perf_counter()
    step = 0
    for epoch in range(1, config.epochs + 1):
        running, seen = 0.0, 0
        for batch in length_bucketed_batches(lengths, config.batch_size, rng):
            input_ids, mask = collate([encoded[i] for i in batch], tokenizer.pad_token_id)
            target = torch.tensor([labels[i] for i in batch], device=device)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            loss = loss_fn(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(body + head, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += loss.item() * len(batch)
            seen += len(batch)
            if step % config.log_every == 0:
                elapsed = time.perf_counter() - started
                eta = elapsed / step * (total_steps - step)
                progress(
                    f"epoch {epoch} step {step}/{total_steps} loss {running / seen:.4f} "
                    f"elapsed {elapsed / 60:.1f} min eta {eta / 60:.1f} min"
                )
        record = {
            "epoch": epoch,
            "train_loss": round(running / max(1, seen), 4),
            "minutes": round((time.perf_counter() - started) / 60, 2),
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {
            "finetune": json.dumps(asdict(settings)),
            "epoch": str(epoch),
            "train": json.dumps(asdict(config)),
        }
        save_file(export_finetuned_tensors(model, settings), str(out_path), metadata=metadata)
        if dev is not None:
            record["dev_accuracy"] = evaluate_model(model, tokenizer, *dev)["accuracy"]
        history.append(record)
        progress(f"epoch {epoch} done: {json.dumps(record)} (weights saved to {out_path})")
    return {
        "train_rows": len(texts),
        "epochs": config.epochs,
        "wall_minutes": round((time.perf_counter() - started) / 60, 2),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "history": history,
        "weights_bytes": out_path.stat().st_size,
    }


def average_checkpoints(paths: Sequence[Path], settings: FineTuneSettings) -> torch.nn.Module:
    """Uniform soup: load each full fine-tune (same base, same head initialisation) and average every weight."""
    from dataclasses import replace

    if settings.method != "full":
        raise ValueError(
            "only full fine-tunes can be averaged into one model (LoRA adapters are not aligned)"
        )
    if len(paths) < 2:
        raise ValueError(f"a soup needs at least two checkpoints, got {len(paths)}")
    cpu = torch.device("cpu")
    models = [
        load_sentiment_model(replace(SST2_SENTIMENT, weights=Path(p), finetune=settings), cpu) for p in paths
    ]
    soup, others = models[0], [dict(m.named_parameters()) for m in models[1:]]
    with torch.no_grad():
        for name, param in soup.named_parameters():
            param.copy_(torch.stack([param, *(other[name] for other in others)]).mean(dim=0))
    return soup


def make_soup(
    paths: Sequence[Path],
    out_path: Path,
    settings: FineTuneSettings,
    dev: tuple[list[str], list[int]] | None,
    progress: Callable[[str], None] = _print_progress,
) -> dict:
    """Average `paths` into `out_path` (same format as one run) and score the saved file on dev."""
    from dataclasses import replace

    from safetensors.torch import save_file

    soup = average_checkpoints(paths, settings)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "finetune": json.dumps(asdict(settings)),
        "soup_of": json.dumps([Path(p).name for p in paths]),
    }
    save_file(export_finetuned_tensors(soup, settings), str(out_path), metadata=metadata)
    record: dict = {"soup_of": [str(p) for p in paths], "weights_bytes": out_path.stat().st_size}
    if dev is not None:
        # score the file as the app loads it (its int8 rounding can move a sentence or two)
        shipped = load_sentiment_model(replace(SST2_SENTIMENT, weights=out_path, finetune=settings))
        record["dev_accuracy"] = evaluate_model(shipped, load_tokenizer(), *dev)["accuracy"]
    progress(f"soup of {len(paths)} runs saved to {out_path}: {json.dumps(record)}")
    return record


def train_soup(
    data_dir: Path,
    out_path: Path = SST2_SENTIMENT.weights,
    config: TrainConfig = TrainConfig(),
    settings: FineTuneSettings = SST2_SENTIMENT.finetune,
    lrs: Sequence[float] = SOUP_LRS,
    ingredients_dir: Path | None = None,
    eval_dev: bool = True,
    progress: Callable[[str], None] = _print_progress,
) -> dict:
    """One full fine-tune per learning rate in `lrs` (same seed), then their uniform average.

    The runs are written to `ingredients_dir` (a temporary folder unless given) so a soup can be
    re-made from them without retraining (`--soup-of`).
    """
    import tempfile
    from dataclasses import replace

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sst2-soup-") as scratch:
        folder = Path(ingredients_dir) if ingredients_dir else Path(scratch)
        runs, paths = [], []
        for lr in lrs:
            path = folder / f"{out_path.stem}.lr{lr:g}.safetensors"
            progress(f"run {len(runs) + 1} of {len(lrs)}: encoder lr {lr:g} -> {path}")
            runs.append(
                {"lr": lr, **train(data_dir, path, replace(config, lr=lr), settings, eval_dev, progress)}
            )
            paths.append(path)
        dev_path = Path(data_dir) / "dev.tsv"
        dev = read_sst2(dev_path) if eval_dev and dev_path.is_file() else None
        soup = make_soup(paths, out_path, settings, dev, progress)
    return {
        "train_rows": runs[0]["train_rows"],
        "epochs": config.epochs,
        "wall_minutes": round((time.perf_counter() - started) / 60, 2),
        "threads": torch.get_num_threads(),
        "device": runs[0]["device"],
        "runs": runs,
        "soup": soup,
        "weights_bytes": out_path.stat().st_size,
    }
