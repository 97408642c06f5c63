"""`python -m models {train,evaluate} speech --data-dir DIR [options]`.

train     trains the recognizer (digits 0–9, ten commands, "other", "silence") on FSDD recordings
          5–49, the train split of speech_commands_digits_extra and speech_commands_words with its
          noise (found beside DIR), and espeak-ng voices (cached under --cache-dir); picks the reading
          speed and the "not a word I know" threshold on validation carved from that training data
          (models.speech.reading_speed); writes the safetensors
          weights with the command line, data and seeds (models.speech.training_run).
evaluate  scores the weights on FSDD's test split (recordings 0–4) and, when found beside DIR, on
          speech_commands_subset (all 300 clips) and the test split of speech_commands_digits_extra,
          plus seeded three-digit strings built from that split; writes metrics.json, refreshes the
          model card's tables and prints one JSON line `{"task": "speech", ...}` last
          (models.speech.evaluation).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from models.speech import PACKAGE_DIR, SPEECH_BUNDLE

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = PACKAGE_DIR.parents[1].parent / "shared" / "data" / "fsdd"
DOWNLOAD_HINT = (
    "FSDD not found. Pass --data-dir pointing at a folder with fsdd.npz (see shared/data/fsdd/PROVENANCE.md; "
    "the source is https://github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0). "
    "This project does not download data at run time."
)
DEFAULT_WEIGHTS = SPEECH_BUNDLE.weights_path  # the file the service loads


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
    parser.add_argument(
        "--data-dir",
        help=f"folder with fsdd.npz; the Speech Commands sets are looked for beside it "
        f"(default {DEFAULT_DATA_DIR} when present)",
    )
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--batch-size", type=int, default=64 if action == "train" else 128)
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for torch (the reference run used 1)"
    )
    if action == "train":
        from models.speech.training_run import add_train_arguments

        add_train_arguments(parser)
    else:
        parser.add_argument("--metrics-out", type=Path, default=PACKAGE_DIR / "metrics.json")
    return parser


def main(action: str, argv: list[str]) -> int:
    args = _parser(action).parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    logging.getLogger().setLevel(logging.INFO)
    if action not in ("train", "evaluate"):
        print(f"unknown action {action!r}", file=sys.stderr)
        return 2
    data_dir = _data_dir(args.data_dir)
    if data_dir is None:
        return 2
    if action == "train":
        from models.speech.training_run import run_training

        return run_training(args, argv, data_dir, SPEECH_BUNDLE.name)
    if not args.weights.is_file():
        print(
            f"error: weights {args.weights} not found; run `python -m models train speech` first",
            file=sys.stderr,
        )
        return 2
    from models.speech.evaluation import evaluate

    return evaluate(args, argv, data_dir, SPEECH_BUNDLE.name)
