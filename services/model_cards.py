"""Model cards and measured metrics of every shipped model, as plain data for the cards page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.tasks import TASKS

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

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


def evaluate_command(task: str) -> str:
    """The command that reproduces a task's metrics.json from the shared data sets."""
    return f"python -m models evaluate {task} --data-dir ../shared/data/{TASKS[task].data_dir}"


def load_model_cards(models_dir: Path = MODELS_DIR) -> list[ModelCard]:
    cards = []
    for task, spec in TASKS.items():
        folder = models_dir / task
        card_path = folder / "MODEL_CARD.md"
        if not card_path.is_file():
            continue
        markdown = _FRONT_MATTER.sub("", card_path.read_text(encoding="utf-8"))
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        # The command actually run, as the evaluation CLI recorded it, over the documented default.
        command = str(metrics.get("command") or evaluate_command(task))
        cards.append(ModelCard(task, spec.card_title, command, list(spec.references), markdown, metrics))
    return cards
