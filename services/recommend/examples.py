"""The bundled hand-made rating profiles (not MovieLens data) the page offers as starting points."""

from __future__ import annotations

import json
from pathlib import Path

from models.recommend import MF_MOVIELENS_100K

EXAMPLES_DIR = Path(MF_MOVIELENS_100K.weights_path).parent / "examples"


def example_inputs() -> list[dict]:
    """The bundled hand-made rating profiles: {"name", "description", "ratings": {item_id: rating}}."""
    examples = []
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        ratings = {int(item): float(value) for item, value in data["ratings"].items()}
        examples.append({"name": path.stem, "description": data["description"], "ratings": ratings})
    return examples
