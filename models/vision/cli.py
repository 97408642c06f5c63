"""`python -m models train vision ...` and `python -m models evaluate vision ...`."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.vision import MNIST_CNN, PACKAGE_DIR

logger = logging.getLogger(__name__)

DEFAULT_METRICS = PACKAGE_DIR / "metrics.json"
COUNT_EPOCHS = 4  # the counting network's task is coarser than reading the digit: fewer epochs suffice


def _train(argv: list[str]) -> int:
    from models.vision.count import DIGIT_COUNT, CountDataConfig, train_count_model, validation_accuracy
    from models.vision.train import TrainConfig, load_mnist, train

    defaults, count_defaults = TrainConfig(), CountDataConfig()
    parser = argparse.ArgumentParser(
        prog="python -m models train vision",
        description="Train the digit CNN on MNIST, then the network that tells one digit from several "
        "or from part of one (models/vision/count.py), on cut-outs composed from MNIST training digits.",
    )
    parser.add_argument("--data-dir", help="folder holding mnist.npz (omit to download the canonical copy)")
    parser.add_argument(
        "--model", choices=("all", "digits", "count"), default="all", help="which network(s) to train"
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.max_lr, help="peak learning rate (one-cycle)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument(
        "--threads", type=int, default=defaults.threads, help="CPU threads (0 = torch default)"
    )
    parser.add_argument("--no-augment", action="store_true", help="train on clean MNIST only")
    parser.add_argument("--out", type=Path, default=MNIST_CNN.weights, help="where to write the safetensors")
    parser.add_argument(
        "--count-out", type=Path, default=DIGIT_COUNT.weights, help="the counting network's file"
    )
    parser.add_argument(
        "--count-samples", type=int, default=count_defaults.samples, help="composed cut-outs to train it on"
    )
    parser.add_argument("--count-epochs", type=int, default=COUNT_EPOCHS)
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_lr=args.lr,
        seed=args.seed,
        limit=args.limit,
        threads=args.threads,
        augment=not args.no_augment,
    )
    command = shlex.join(["python", "-m", "models", "train", "vision", *argv])
    mnist = load_mnist(args.data_dir)
    if args.model in ("all", "digits"):
        summary = train(mnist, args.out, cfg)
        print(json.dumps({"task": "vision", "action": "train", "command": command, **summary}))
    if args.model in ("all", "count"):
        if args.limit:  # a smoke run: the cut-outs come from the first N digits
            mnist = {**mnist, "x_train": mnist["x_train"][: args.limit + 5000]}
        data_cfg = CountDataConfig(samples=args.count_samples, seed=args.seed)
        summary = train_count_model(mnist, args.count_out, data_cfg, replace(cfg, epochs=args.count_epochs))
        model = type(DIGIT_COUNT)(
            name=DIGIT_COUNT.name, weights=args.count_out, labels=DIGIT_COUNT.labels
        ).get_model("cpu")
        summary["validation"] = validation_accuracy(model, mnist, data_cfg)
        summary = {"task": "vision", "action": "train", "command": command, **summary}
        args.count_out.with_suffix(".train.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary))
    return 0


def _evaluate(argv: list[str]) -> int:
    import torch

    from models.runtime import select_device
    from models.vision.train import classification_metrics, load_mnist, predict_tensor, to_tensor

    parser = argparse.ArgumentParser(
        prog="python -m models evaluate vision",
        description="Evaluate the digit CNN on the MNIST 10k test set.",
    )
    parser.add_argument("--data-dir", help="folder holding mnist.npz (omit to download the canonical copy)")
    parser.add_argument("--weights", type=Path, default=MNIST_CNN.weights)
    parser.add_argument("--metrics-out", type=Path, default=DEFAULT_METRICS)
    parser.add_argument(
        "--pipeline-sample",
        type=int,
        default=10000,
        help="also score the first N test images after the app's own preprocessing (0 = skip)",
    )
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    device = select_device()
    bundle = (
        MNIST_CNN
        if args.weights == MNIST_CNN.weights
        else type(MNIST_CNN)(name="custom", weights=args.weights)
    )
    model = bundle.get_model(device)

    started = time.perf_counter()
    probs = predict_tensor(model, to_tensor(data["x_test"]))
    seconds = time.perf_counter() - started
    y_true = data["y_test"].astype(np.int64)
    y_pred = probs.argmax(1).numpy()
    metrics = classification_metrics(y_true, y_pred, bundle.labels)

    print(
        f"MNIST test set: {len(y_true)} images, accuracy {metrics['accuracy']:.4f} ({seconds:.1f} s on {device})"
    )
    print(f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>7}")
    for label, row in metrics["per_class"].items():
        print(
            f"{label:>5} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} {row['support']:>7d}"
        )
    errors = int((y_true != y_pred).sum())
    print(f"errors: {errors}")

    result = {
        "task": "vision",
        "dataset": "MNIST test (10,000)",
        "accuracy": metrics["accuracy"],
        "errors": errors,
        "macro_f1": round(float(np.mean([r["f1"] for r in metrics["per_class"].values()])), 4),
    }
    if args.pipeline_sample:
        # The same images once more, but through the app's preprocessing (polarity, crop to ink,
        # fit 20×20, centre of mass) — checks that preprocessing leaves MNIST-like input MNIST-like.
        from models.vision.preprocess import NoInkFound, preprocess_gray

        n = min(args.pipeline_sample, len(y_true))
        batch, keep = [], []
        for i in range(n):
            try:
                batch.append(
                    preprocess_gray(data["x_test"][i].astype(np.float32) / 255, bundle.preprocess).image
                )
                keep.append(i)
            except NoInkFound:
                pass
        pp = predict_tensor(model, torch.from_numpy(np.stack(batch)).unsqueeze(1)).argmax(1).numpy()
        pipeline_acc = float((pp == y_true[keep]).sum() / n)
        print(f"through the app's preprocessing: accuracy {pipeline_acc:.4f} on the first {n} test images")
        result["accuracy_through_app_preprocessing"] = round(pipeline_acc, 4)
        result["pipeline_sample"] = n

    args.metrics_out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.metrics_out.read_text()) if args.metrics_out.is_file() else {}
    full = {
        **result,
        "command": shlex.join(["python", "-m", "models", "evaluate", "vision", *argv]),
        "weights": args.weights.name,
        "device": str(device),
        **{k: metrics[k] for k in ("per_class", "labels", "confusion_matrix")},
    }
    if "numbers" in previous:  # written by `models.vision.number_images --score`: not this command's to drop
        full["numbers"] = previous["numbers"]
    args.metrics_out.write_text(json.dumps(full, indent=1) + "\n")
    logger.info("metrics written to %s", args.metrics_out)
    print(json.dumps(result))
    return 0


def main(action: str, argv: list[str]) -> int:
    if action == "train":
        return _train(argv)
    if action == "evaluate":
        return _evaluate(argv)
    raise SystemExit(f"unknown action {action!r}; use train or evaluate")
