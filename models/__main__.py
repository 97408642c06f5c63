"""Entry point: `python -m models {train,evaluate} {vision,speech,nlp,recommend} [options]`, and
`python -m models readme` (refresh the README's model table and each card's measured figures from
the metrics files).

Each task lives in its own package (`models/<task>/`) whose `cli` module exposes
`main(action: str, argv: list[str]) -> int`; the task is imported lazily so that training the
recommender never pays for importing transformers.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from services.tasks import TASK_NAMES as TASKS  # light: no model is imported

ACTIONS = ("train", "evaluate")
USAGE = (
    f"usage: python -m models {{{','.join(ACTIONS)}}} {{{','.join(TASKS)}}} [--help] [options]\n"
    "       python -m models readme"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["readme"]:
        from models.report import ROWS, update_card, update_readme

        changed = [name for name, done in [("README.md", update_readme())] if done]
        changed += [f"models/{r.task}/MODEL_CARD.md" for r in ROWS if update_card(r.task)]
        print("updated: " + ", ".join(changed) if changed else "README and model cards already up to date")
        return 0
    if len(argv) < 2 or argv[0] not in ACTIONS or argv[1] not in TASKS:
        print(USAGE, file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    action, task, rest = argv[0], argv[1], argv[2:]
    cli = importlib.import_module(f"models.{task}.cli")
    return int(cli.main(action, rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
