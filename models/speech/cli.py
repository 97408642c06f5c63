"""`python -m models {train,evaluate} speech --data-dir DIR [options]`.

train     trains the spoken-digit GRU on FSDD recordings 5–49 and writes the safetensors weights.
evaluate  scores the weights on the official test split (recordings 0–4, 300 clips), writes
          metrics.json (accuracy, per-speaker accuracy, labels, confusion matrix) and prints one
          JSON line `{"task": "speech", "accuracy": ...}` last.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from models.runtime import describe_device, select_device
from models.speech import FSDD_DIGITS_GRU, PACKAGE_DIR, DigitEnsemble
from models.speech.train import TrainConfig, evaluation_report, load_fsdd, predict_clips, train_model

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = PACKAGE_DIR.parents[1].parent / "shared" / "data" / "fsdd"
DOWNLOAD_HINT = (
    "FSDD not found. Pass --data-dir pointing at a folder with fsdd.npz (see shared/data/fsdd/PROVENANCE.md; "
    "the source is https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0). "
    "This project does not download data at run time."
)


def _data_dir(value: str | None) -> Path | None:
    path = Path(value) if value else DEFAULT_DATA_DIR
    if not (path / "fsdd.npz").is_file():
        print(f"error: {path}/fsdd.npz: {DOWNLOAD_HINT}", file=sys.stderr)
        return None
    return path


def _parser(action: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m models {action} speech", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", help=f"folder with fsdd.npz (default {DEFAULT_DATA_DIR} when present)")
    parser.add_argument("--weights", type=Path, default=FSDD_DIGITS_GRU.weights_path)
    parser.add_argument("--batch-size", type=int, default=64 if action == "train" else 128)
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for torch (the reference run used 1)"
    )
    if action == "train":
        parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
        parser.add_argument("--lr", type=float, default=TrainConfig.lr)
        parser.add_argument("--seed", type=int, default=0, help="member k is trained with seed + k")
        parser.add_argument("--members", type=int, default=FSDD_DIGITS_GRU.model.members)
        parser.add_argument(
            "--limit", type=int, default=0, help="train on the first N training clips (quick runs)"
        )
        parser.add_argument(
            "--log-test", action="store_true", help="log test accuracy every 5 epochs (monitoring only)"
        )
    else:
        parser.add_argument("--metrics-out", type=Path, default=PACKAGE_DIR / "metrics.json")
    return parser


def _train(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args.data_dir)
    if data_dir is None:
        return 2
    data = load_fsdd(data_dir)
    train_idx, test_idx = data.split("train"), data.split("test")
    if args.limit:
        train_idx = train_idx[:: max(1, len(train_idx) // args.limit)][: args.limit]
    bundle = FSDD_DIGITS_GRU
    device = select_device()
    test_clips = [data.clips[i] for i in test_idx]

    def eval_fn(model):
        probs = predict_clips(model, test_clips, bundle.features)
        return float((probs.argmax(1) == data.digits[test_idx]).mean())

    started = time.perf_counter()
    members = []
    for k in range(args.members):
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed + k)
        logger.info("training member %d/%d (seed %d)", k + 1, args.members, config.seed)
        members.append(
            train_model(
                [data.clips[i] for i in train_idx],
                data.digits[train_idx],
                config,
                features=bundle.features,
                model_config=bundle.model,
                device=device,
                eval_fn=eval_fn if args.log_test else None,
            )
        )
    model = DigitEnsemble.from_members(members)
    wall = time.perf_counter() - started
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(
        state,
        str(args.weights),
        metadata={
            "bundle": bundle.name,
            "train": json.dumps({**asdict(config), "seed": args.seed, "members": args.members}),
        },
    )
    accuracy = eval_fn(model)
    print(json.dumps({"task": "speech", "weights": str(args.weights), "train_clips": len(train_idx),
                      "epochs": args.epochs, "train_wall_s": round(wall, 1), "test_accuracy": round(accuracy, 4)}))  # fmt: skip
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args.data_dir)
    if data_dir is None:
        return 2
    data = load_fsdd(data_dir)
    test_idx = data.split("test")
    bundle = FSDD_DIGITS_GRU
    weights = args.weights
    if not weights.is_file():
        print(
            f"error: weights {weights} not found; run `python -m models train speech` first", file=sys.stderr
        )
        return 2
    from dataclasses import replace

    device = select_device()
    model = replace(bundle, weights_path=weights).get_model(device)  # the averaged ensemble
    started = time.perf_counter()
    probs = predict_clips(
        model, [data.clips[i] for i in test_idx], bundle.features, batch_size=args.batch_size
    )
    elapsed = time.perf_counter() - started
    report = evaluation_report(probs, data.digits[test_idx], data.speakers[test_idx])
    metrics = {
        "task": "speech",
        "model": bundle.name,
        "dataset": "Free Spoken Digit Dataset, official test split (recordings 0-4 of 6 speakers x 10 digits)",
        **report,
        "command": f"python -m models evaluate speech --data-dir {args.data_dir or DEFAULT_DATA_DIR}",
        "device": describe_device(device)["name"],
        "eval_seconds": round(elapsed, 2),
    }
    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    args.metrics_out.write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info("per-speaker accuracy: %s", report["per_speaker_accuracy"])
    print(json.dumps({"task": "speech", "accuracy": report["accuracy"], "n_test": report["n_test"],
                      "errors": report["errors"]}))  # fmt: skip
    return 0


def main(action: str, argv: list[str]) -> int:
    args = _parser(action).parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    logging.getLogger().setLevel(logging.INFO)
    if action == "train":
        return _train(args)
    if action == "evaluate":
        return _evaluate(args)
    print(f"unknown action {action!r}", file=sys.stderr)
    return 2
