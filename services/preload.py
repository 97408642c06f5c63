"""Load every task's model in a background thread, so the app answers before they are ready.

The web server starts in about a second; the models take several more (the language model most).
`start_background_loading()` loads them one after another in a daemon thread, fastest first, so each
becomes usable as soon as it is ready; `status()` tells the home page which are. Loading goes through
each task's `load_service()`, so a page that asks for a model still loading simply waits for the
same instance instead of loading a second copy.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from services import registry
from services.tasks import LOAD_ORDER  # fastest first: each card fills in as soon as it can

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_status: dict[str, dict[str, Any]] = {task: {"state": "waiting"} for task in LOAD_ORDER}


def _load_all(tasks: tuple[str, ...]) -> None:
    for task in tasks:
        if registry.is_loaded(task):
            _status[task] = {"state": "ready", "seconds": 0.0}
            continue
        _status[task] = {"state": "loading", "since": time.monotonic()}
        started = time.perf_counter()
        try:
            registry.load(task)
        except Exception as err:  # noqa: BLE001 - a broken model must not stop the others from loading
            logger.exception("background load of %s failed", task)
            _status[task] = {"state": "failed", "error": f"{type(err).__name__}: {err}"}
            continue
        seconds = round(time.perf_counter() - started, 2)
        _status[task] = {"state": "ready", "seconds": seconds}
        logger.info("%s model ready after %.2f s", task, seconds)
    for task in tasks:  # every model answers: now build what each deferred to start fast
        if _status[task]["state"] == "ready":
            try:
                registry.load(task).warm_up()
            except Exception:  # noqa: BLE001 - the request that needs it will report the error
                logger.exception("warm-up of %s failed", task)


def start_background_loading(tasks: tuple[str, ...] = LOAD_ORDER) -> None:
    """Start loading (once per process; later calls do nothing)."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        _thread = threading.Thread(target=_load_all, args=(tasks,), name="model-preload", daemon=True)
        _thread.start()


def status(task: str) -> dict[str, Any]:
    """{"state": "waiting" | "loading" | "ready" | "failed", ...} for one task."""
    if registry.is_loaded(task):
        return {"state": "ready", **{k: v for k, v in _status.get(task, {}).items() if k == "seconds"}}
    return dict(_status.get(task, {"state": "waiting"}))


def wait_until_ready(timeout_s: float) -> bool:
    """Block until every task is loaded or failed (for tests and benchmarks)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(status(task)["state"] in ("ready", "failed") for task in LOAD_ORDER):
            return True
        time.sleep(0.05)
    return False
