"""Model cards and measured metrics of every shipped model, as plain data for the cards page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

# task folder → (display title, the command that reproduces metrics.json, published references)
CARD_INDEX: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "vision": (
        "Vision · CNN digit recognizer (MNIST)",
        "python -m models evaluate vision --data-dir ../shared/data/mnist",
        [("LeNet-5 (LeCun et al., 1998)", "accuracy 0.9905"), ("classic Keras Conv32-64-64 CNN", "≈ 0.99")],
    ),
    "nlp": (
        "Language · MiniLM-L6 sentiment (SST-2)",
        "python -m models evaluate nlp --data-dir ../shared/data/sst2",
        [("DistilBERT (GLUE dev)", "accuracy 0.913"), ("MiniLM-L6-H384 (GLUE dev)", "accuracy 0.915")],
    ),
    "speech": (
        "Speech · digits and voice commands (recurrent network, FSDD + Speech Commands)",
        "python -m models evaluate speech --data-dir ../shared/data/fsdd",
        [("published FSDD results", "accuracy 0.97–0.973")],
    ),
    "recommend": (
        "Recommendation · biased matrix factorization (MovieLens-100K)",
        "python -m models evaluate recommend --data-dir ../shared/data/movielens-100k",
        [("Surprise SVD, 5-fold", "RMSE 0.934"), ("Surprise SVD++, 5-fold", "RMSE 0.919")],
    ),
}

_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


@dataclass(frozen=True)
class ModelCard:
    task: str
    title: str
    reproduce_command: str
    references: list[tuple[str, str]]
    markdown: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def confusion_matrix(self) -> tuple[list[str], list[list[int]]] | None:
        matrix = self.metrics.get("confusion_matrix")
        labels = self.metrics.get("labels")
        if not matrix or not labels:
            return None
        return [str(label) for label in labels], matrix

    def headline_metrics(self) -> dict[str, float]:
        """Top-level numeric figures from metrics.json (nested tables are left to the card text)."""
        return {
            key: float(value)
            for key, value in self.metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }


def load_model_cards(models_dir: Path = MODELS_DIR) -> list[ModelCard]:
    cards = []
    for task, (title, command, references) in CARD_INDEX.items():
        folder = models_dir / task
        card_path = folder / "MODEL_CARD.md"
        if not card_path.is_file():
            continue
        markdown = _FRONT_MATTER.sub("", card_path.read_text(encoding="utf-8"))
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        # The command actually run, as the evaluation CLI recorded it, over the documented default.
        command = str(metrics.get("command") or command)
        cards.append(ModelCard(task, title, command, references, markdown, metrics))
    return cards
