"""Is the whole-number confidence honest? A reliability diagram over generated numbers, and the doubt threshold.

The service's confidence for a number is the probability of the whole string (the product of its
digits'). Over numbers it never saw, a 90 % answer should be right about 90 % of the time. This
reads the answers of `python -m services.vision` on numbers from `models.vision.number_images`:

    # fit: numbers composed of MNIST *training* digits held out from the counting network
    python -m models.vision.number_images --data-dir ../shared/data/mnist --split held-out \\
        --out /tmp/numbers_train --per-kind 300 --seed 7
    python -m services.vision /tmp/numbers_train/*.jpg /tmp/numbers_train/*.png > /tmp/numbers_train.jsonl
    python -m models.vision.calibration --fit /tmp/numbers_train --predictions /tmp/numbers_train.jsonl \\
        --metrics-out models/vision/metrics.json

    # check, measured only: the test-split numbers of metrics.json's `numbers` record
    python -m models.vision.calibration --check /tmp/numbers --predictions /tmp/numbers.jsonl \\
        --metrics-out models/vision/metrics.json

`--fit` chooses the doubt threshold on the training-derived numbers only: the lowest bin edge from
which every bin with answers was right at least MIN_BIN_ACCURACY of the time. Answers below it are
flagged (`low_confidence`, "check this number"). `--check` never changes the threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

import numpy as np

BIN_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.999, 1.0)
MIN_BIN_ACCURACY = 0.95  # a number is trusted from the confidence where answers are this often right
RECORD = "number_calibration"


def answers(folder: Path, predictions: Path) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, right) per generated number read by the service; failed reads count as wrong at 0."""
    with (folder / "labels.csv").open() as handle:
        truth = {row["file"]: row["label"] for row in csv.DictReader(handle)}
    confidence, right = [], []
    for line in predictions.read_text().splitlines():
        record = json.loads(line)
        label = truth.get(Path(record["file"]).name)
        if label is None:
            continue
        confidence.append(float(record.get("confidence") or 0.0))
        right.append(record.get("label") == label)
    return np.asarray(confidence), np.asarray(right, dtype=bool)


def reliability(confidence: np.ndarray, right: np.ndarray) -> dict:
    """Bins of confidence with their mean confidence and accuracy, and the expected calibration error."""
    bins = []
    upper_edges = list(BIN_EDGES[1:])
    upper_edges[-1] = 1.0 + 1e-9  # a confidence of exactly 1 falls in the last bin
    for lower, upper in zip(BIN_EDGES[:-1], upper_edges, strict=True):
        inside = (confidence >= lower) & (confidence < upper)
        if inside.any():
            bins.append(
                {
                    "lower": lower,
                    "upper": min(upper, 1.0),
                    "n": int(inside.sum()),
                    "confidence": round(float(confidence[inside].mean()), 4),
                    "accuracy": round(float(right[inside].mean()), 4),
                }
            )
    ece = sum(row["n"] * abs(row["confidence"] - row["accuracy"]) for row in bins) / max(1, len(confidence))
    return {
        "n": int(len(confidence)),
        "exact_match": round(float(right.mean()), 4),
        "ece": round(ece, 4),
        "bins": bins,
    }


def doubt_threshold(bins: list[dict]) -> float:
    """The lowest bin edge from which every bin was right at least MIN_BIN_ACCURACY of the time."""
    threshold = 1.0
    for row in reversed(bins):
        if row["accuracy"] < MIN_BIN_ACCURACY:
            break
        threshold = row["lower"]
    return threshold


def flagged(confidence: np.ndarray, right: np.ndarray, threshold: float) -> dict:
    doubt = confidence < threshold
    return {
        "flagged_share": round(float(doubt.mean()), 4),
        "errors_flagged": round(float(doubt[~right].mean()), 4) if (~right).any() else 1.0,
        "right_but_flagged": round(float(doubt[right].mean()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.vision.calibration", description=__doc__.splitlines()[0]
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--fit", type=Path, metavar="FOLDER", help="training-derived numbers: choose the threshold"
    )
    mode.add_argument("--check", type=Path, metavar="FOLDER", help="test numbers: measure only")
    parser.add_argument(
        "--predictions", type=Path, required=True, help="JSON lines from python -m services.vision"
    )
    parser.add_argument(
        "--metrics-out", type=Path, help=f"record the result as `{RECORD}` in this metrics.json"
    )
    args = parser.parse_args(argv)
    folder = args.fit or args.check
    confidence, right = answers(folder, args.predictions)
    if not len(confidence):
        parser.error(f"no prediction in {args.predictions} matches {folder}/labels.csv")
    result = reliability(confidence, right)
    metrics = (
        json.loads(args.metrics_out.read_text()) if args.metrics_out and args.metrics_out.is_file() else {}
    )
    record = dict(metrics.get(RECORD, {}))
    generated = folder / "generated.json"
    result["generated_by"] = json.loads(generated.read_text()).get("command") if generated.is_file() else None
    result["measured_by"] = shlex.join(["python", "-m", "models.vision.calibration", *(argv or sys.argv[1:])])
    if args.fit:
        threshold = doubt_threshold(result["bins"])
        record = {"doubt_below": threshold, "fit": {**result, **flagged(confidence, right, threshold)}}
    else:
        threshold = record.get("doubt_below")
        if threshold is None:
            parser.error("run --fit first: the threshold comes from training-derived numbers only")
        record["test"] = {**result, **flagged(confidence, right, threshold)}
    if args.metrics_out:
        metrics[RECORD] = record
        args.metrics_out.write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps({"doubt_below": threshold, **{k: v for k, v in result.items() if k != "bins"}}))
    for row in result["bins"]:
        print(
            f"  confidence {row['lower']:.3f}-{row['upper']:.3f}: n={row['n']:4d} "
            f"mean confidence {row['confidence']:.3f}, right {row['accuracy']:.3f}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
