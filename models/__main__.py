"""Entry point: `python -m models {train,evaluate} TASK [options]` (TASK from services/tasks.py),
`python -m models {train,evaluate} all --data-dir ROOT` (every task in turn, each on its dataset folder
under ROOT, as `make train` and `make evaluate` do), and `python -m models readme` (refresh the README's model table and each card's measured figures from
the metrics files).

Each task lives in its own package (`models/<task>/`) whose `cli` module exposes
`main(action: str, argv: list[str]) -> int`; the task is imported lazily so that training the
recommender never pays for importing transformers.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from services.tasks import LOAD_ORDER  # light: no model is imported
from services.tasks import TASKS as TASK_TABLE

TASKS = tuple(TASK_TABLE)

ACTIONS = ("train", "evaluate")
USAGE = (
    f"usage: python -m models {{{','.join(ACTIONS)}}} {{{','.join(TASKS)}}} [--help] [options]\n"
    f"       python -m models {{{','.join(ACTIONS)}}} all --data-dir ROOT\n"
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
    if len(argv) >= 2 and argv[0] in ACTIONS and argv[1] == "all":
        return every_task(argv[0], argv[2:])
    if len(argv) < 2 or argv[0] not in ACTIONS or argv[1] not in TASKS:
        print(USAGE, file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    action, task, rest = argv[0], argv[1], argv[2:]
    cli = importlib.import_module(f"models.{task}.cli")
    return int(cli.main(action, rest) or 0)


def every_task(action: str, argv: list[str]) -> int:
    """`action` for each task of the table, fastest first, each in its own process (a training's memory
    is returned before the next starts) on ROOT/<its data_dir>; stops at the first failure."""
    if len(argv) != 2 or argv[0] != "--data-dir":
        print(f"usage: python -m models {action} all --data-dir ROOT", file=sys.stderr)
        return 2
    root = Path(argv[1])
    for task in LOAD_ORDER:
        command = [
            sys.executable,
            "-m",
            "models",
            action,
            task,
            "--data-dir",
            str(root / TASK_TABLE[task].data_dir),
        ]
        print(f"== {action} {task}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        returncode = subprocess.run(command, check=False).returncode
        if returncode != 0:
            print(
                f"{action} {task} failed (exit {returncode}); the tasks after it did not run", file=sys.stderr
            )
            return returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
