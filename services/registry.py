"""The tasks' in-process services, by name (the table itself is services/tasks.py)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from services.tasks import TASKS, spec

# task name → module in services/ that defines `load_service()` for it
TASK_MODULES = {name: task.module for name, task in TASKS.items()}


def task_module(task: str) -> ModuleType:
    return importlib.import_module(spec(task).module)


def load(task: str) -> Any:
    """The task's in-process service, built once per process by its `load_service()`."""
    return task_module(task).load_service()


def is_loaded(task: str) -> bool:
    """Whether the task's service exists in this process, without importing anything.

    The home page asks this on every render: importing a task module pulls in torch (over a second on
    two cores), and one still being imported by the loading thread would make the page wait for it.
    """
    loader = getattr(sys.modules.get(spec(task).module), "load_service", None)
    return bool(getattr(loader, "is_loaded", lambda: False)())
