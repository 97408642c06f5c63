"""The four tasks by name, and the module that serves each (one place, for pages, API and Ray Serve)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

# task name → module in services/ that defines `load_service()` for it
TASK_MODULES = {
    "vision": "services.vision",
    "speech": "services.speech",
    "nlp": "services.nlp",
    "recommend": "services.recommend",
}


def task_module(task: str) -> ModuleType:
    if task not in TASK_MODULES:
        raise KeyError(f"unknown task {task!r}; expected one of {', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[task])


def load(task: str) -> Any:
    """The task's in-process service, built once per process by its `load_service()`."""
    return task_module(task).load_service()


def is_loaded(task: str) -> bool:
    """Whether the task's service exists in this process, without importing anything.

    The home page asks this on every render: importing a task module pulls in torch (over a second on
    two cores), and one still being imported by the loading thread would make the page wait for it.
    """
    if task not in TASK_MODULES:
        raise KeyError(f"unknown task {task!r}; expected one of {', '.join(TASK_MODULES)}")
    loader = getattr(sys.modules.get(TASK_MODULES[task]), "load_service", None)
    return bool(getattr(loader, "is_loaded", lambda: False)())
