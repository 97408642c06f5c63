"""`python -m models train nlp --data-dir DIR` and `python -m models evaluate nlp --data-dir DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from models.nlp import PACKAGE_DIR, SST2_SENTIMENT

DEFAULT_METRICS = PACKAGE_DIR / "metrics.json"
CANONICAL_URL = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"


def _data_dir(value: str | None) -> Path:
    if value:
        folder = Path(value)
        if not (folder / "train.tsv").is_file() and not (folder / "dev.tsv").is_file():
            raise SystemExit(f"error: {folder} holds neither train.tsv nor dev.tsv (GLUE SST-2 layout)")
        return folder
    raise SystemExit(
        "error: --data-dir is required: a folder with GLUE SST-2 train.tsv and dev.tsv "
        f"(for example ../shared/data/sst2; canonical source {CANONICAL_URL}, not downloaded automatically "
        "because this demo runs offline)"
    )


def _train(argv: list[str]) -> int:
    from dataclasses import replace

    from models.nlp.train import MixedConfig, train_sentiment

    defaults = MixedConfig()
    parser = argparse.ArgumentParser(prog="python -m models train nlp", description=__doc__)
    parser.add_argument(
        "--data-dir",
        help="folder with GLUE SST-2 train.tsv; the other training sets are read beside it",
    )
    parser.add_argument(
        "--out", type=Path, default=SST2_SENTIMENT.weights, help="where to write the safetensors"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="epoch checkpoints and the resume state (rerun the same command to continue; "
        "default: a folder beside --out)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--per-epoch-scale",
        type=float,
        default=defaults.per_epoch_scale,
        help="multiply every source's rows per epoch (smoke runs)",
    )
    parser.add_argument("--limit-rows", type=int, default=None, help="cap every source's rows (smoke runs)")
    parser.add_argument(
        "--balance-labels",
        action="store_true",
        help="draw each source half negative, half positive (an experiment that lost on validation)",
    )
    parser.add_argument(
        "--sst2-first-epochs",
        type=int,
        default=defaults.sst2_first_epochs,
        help="first train this many epochs on SST-2 alone, then the mixed stage from there (0: mixed only)",
    )
    args = parser.parse_args(argv)
    data_dir = _data_dir(args.data_dir)
    torch.set_num_threads(max(1, args.threads))
    config = replace(
        defaults,
        epochs=args.epochs,
        seed=args.seed,
        limit_rows=args.limit_rows,
        per_epoch_scale=args.per_epoch_scale,
        balance_labels=args.balance_labels or defaults.balance_labels,
        sst2_first_epochs=args.sst2_first_epochs,
    )
    work_dir = args.work_dir or args.out.parent / f"{args.out.stem}.mixed-work"
    # the other sets sit beside the SST-2 folder (../shared/data/sst2 -> ../shared/data)
    summary = train_sentiment(data_dir.parent, args.out, work_dir, config, SST2_SENTIMENT.finetune)
    record = {
        "task": "nlp",
        "action": "train",
        "command": "python -m models train nlp " + " ".join(argv),
        **summary,
    }
    args.out.with_suffix(".train.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return 0


def _evaluate(argv: list[str]) -> int:
    from models.nlp.evaluate import evaluate_checkpoint

    parser = argparse.ArgumentParser(prog="python -m models evaluate nlp", description=__doc__)
    parser.add_argument(
        "--data-dir",
        help="folder with GLUE SST-2 dev.tsv; every test-only sentiment set found beside it is scored too",
    )
    parser.add_argument("--split", default="dev", help="SST-2 TSV file name without .tsv (labelled)")
    parser.add_argument("--weights", type=Path, default=SST2_SENTIMENT.weights, help="checkpoint to score")
    parser.add_argument("--metrics-out", type=Path, default=DEFAULT_METRICS, help="'' to write nothing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--latency-runs", type=int, default=100, help="single-sentence timing runs (0: skip)")
    parser.add_argument(
        "--fit-temperature",
        action="store_true",
        help="refit the softmax temperature on the validation split carved from the train sets "
        "(never on a test set) and store it in the weights' metadata",
    )
    args = parser.parse_args(argv)
    data_dir = _data_dir(args.data_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "task": "nlp",
        "command": "python -m models evaluate nlp " + " ".join(argv),
        **evaluate_checkpoint(data_dir, args.weights, args.split, args.fit_temperature, args.latency_runs),
    }
    if args.metrics_out and str(args.metrics_out):
        # written whole, not merged: a figure of an older model must not survive beside the new ones
        args.metrics_out.write_text(json.dumps(result, indent=2) + "\n")
        if args.metrics_out.resolve() == DEFAULT_METRICS.resolve():
            from models.nlp.card import update_card

            update_card(result)
    print(json.dumps(result))
    return 0


def main(action: str, argv: list[str]) -> int:
    if action == "train":
        return _train(argv)
    if action == "evaluate":
        return _evaluate(argv)
    print(f"unknown action {action!r}; use train or evaluate", file=sys.stderr)
    return 2
