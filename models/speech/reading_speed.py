"""The speed the trained networks read clips at (`FeatureConfig.speed`), chosen on validation only.

The networks learn from clips at their own speed (augmented ±15 %). Once trained, each speed of the
grid is tried on the validation sets carved from the training data: the "not a word I know" threshold
is re-chosen for it exactly as training chooses it, and the speed with the best mean of the real-voice
figures that pick runs (`calibration.SELECTION_FIGURES`) wins; a tie goes to the speed nearest 1.
The shipped networks read strangers best a little slower and lower than they speak; a guess, not
tested: their real training voices are mostly adult men (FSDD's six speakers, espeak-ng's defaults).

`python -m models train speech` ends with this choice. For a file already trained,
`python -m models.speech.reading_speed --data-dir ../shared/data/fsdd [--weights FILE]` rebuilds that
run's validation sets from the command recorded in the file, makes the choice and rewrites the header
(speed, threshold, validation figures and the table of every speed tried); the tensors are untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models.speech import SpeechBundle, read_metadata
from models.speech.calibration import SELECTION_FIGURES, calibrate, selection_figures, selection_score

logger = logging.getLogger(__name__)

SPEED_GRID = tuple(round(0.90 + 0.01 * k, 2) for k in range(15))  # 0.90 … 1.04


@dataclass(frozen=True)
class SpeedChoice:
    speed: float
    threshold: float
    validation: dict  # decision_report per validation set at the chosen speed and threshold
    rows: list[dict]  # every speed tried: its threshold, the selection figures and their mean

    def record(self, command: str | None = None) -> dict:
        out = {
            "rule": "mean of "
            + ", ".join(f"{name} {key}" for name, key in SELECTION_FIGURES)
            + "; threshold re-chosen per speed; ties to the speed nearest 1",
            "chosen": self.speed,
            "rows": self.rows,
        }
        if command:
            out["command"] = command
        return out


def choose_speed(
    probs_at: Callable[[float], dict[str, np.ndarray]],
    set_labels: dict[str, np.ndarray],
    real_sets: tuple[str, ...],
    grid: tuple[float, ...] = SPEED_GRID,
) -> SpeedChoice:
    """Try every speed of `grid`: `probs_at(speed)` gives the class probabilities of each validation set."""
    best: tuple | None = None  # ((score, -distance from 1), speed, threshold, validation)
    rows = []
    for speed in grid:
        threshold, validation = calibrate(probs_at(speed), set_labels, real_sets)
        score = selection_score(validation)
        rows.append({"speed": speed, "reject_threshold": threshold, **selection_figures(validation),
                     "mean": None if score is None else round(score, 4)})  # fmt: skip
        logger.info(
            "reading speed %.2f: threshold %.2f, selection mean %s", speed, threshold, rows[-1]["mean"]
        )
        key = (-1.0 if score is None else round(score, 6), -abs(speed - 1.0))
        if best is None or key > best[0]:
            best = (key, speed, threshold, validation)
    assert best is not None, "the speed grid is empty"
    _, speed, threshold, validation = best
    return SpeedChoice(speed=speed, threshold=threshold, validation=validation, rows=rows)


def parse_grid(text: str) -> tuple[float, ...]:
    speeds = tuple(round(float(v), 3) for v in text.split(",") if v.strip())
    if not speeds or not all(0.5 <= v <= 1.5 for v in speeds):
        raise argparse.ArgumentTypeError(
            "give speeds between 0.5 and 1.5, comma-separated (e.g. 1.0,0.97,0.95)"
        )
    return speeds


def retune(
    weights: Path, data_dir: Path, grid: tuple[float, ...], cache_dir: Path | None, argv: list[str]
) -> dict:
    """Choose the reading speed of an already trained file and rewrite its header in place."""
    from models.speech import cli as speech_cli
    from models.speech import training_run
    from models.speech.train import predict_clips

    bundle = SpeechBundle.from_weights("retune", weights)
    recorded = bundle.training.get("argv")
    if recorded is None:
        raise SystemExit(f"error: {weights} has no training command in its header to rebuild validation from")
    args = speech_cli._parser("train").parse_args(recorded)
    if cache_dir is not None:
        args.cache_dir = cache_dir
    sets = training_run.build_training_data(args, data_dir, bundle.sample_rate)
    sets.pop("_pools")
    val_names = [name for name in training_run.VALIDATION_SETS if name in sets]
    model = bundle.get_model()
    base = replace(bundle.features, speed=1.0)

    def probs_at(speed: float) -> dict[str, np.ndarray]:
        return {
            name: predict_clips(model, sets[name].clips, replace(base, speed=speed)) for name in val_names
        }

    choice = choose_speed(
        probs_at, {name: sets[name].labels for name in val_names}, training_run.REAL_VALIDATION_SETS, grid
    )
    metadata = read_metadata(weights)
    training = json.loads(metadata["training"])
    training["validation"] = choice.validation
    training["reading_speed"] = choice.record("python -m models.speech.reading_speed " + shlex.join(argv))
    metadata.update(
        features=json.dumps(asdict(replace(base, speed=choice.speed))),
        reject_threshold=f"{choice.threshold:.2f}",
        training=json.dumps(training),
    )
    save_file(load_file(str(weights)), str(weights), metadata=metadata)
    return {
        "weights": str(weights),
        "speed": choice.speed,
        "reject_threshold": choice.threshold,
        "rows": choice.rows,
    }


def main(argv: list[str] | None = None) -> int:
    from models.speech.cli import DEFAULT_WEIGHTS, _data_dir

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m models.speech.reading_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", help="folder with fsdd.npz; the Speech Commands sets beside it")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--speeds", type=parse_grid, default=SPEED_GRID, help="comma-separated speeds to try")
    parser.add_argument("--cache-dir", type=Path, help="espeak-ng clip cache (default: the run's own)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(max(1, args.threads))
    data_dir = _data_dir(args.data_dir)
    if data_dir is None:
        return 2
    if not args.weights.is_file():
        print(f"error: weights {args.weights} not found", file=sys.stderr)
        return 2
    print(json.dumps(retune(args.weights, data_dir, args.speeds, args.cache_dir, argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
