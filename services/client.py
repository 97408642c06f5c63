"""One way for the pages to reach a task's service, whatever runs it.

`get_service(task)` returns the in-process service (the default: `make run` needs no server) or,
with `DEMO_BACKEND=http` and `DEMO_API_URL=http://host:8000`, a client of the REST API
(serve/api.py, locally or on Ray Serve) with the same methods and the same result shapes. Pages call
only these methods, so they do not change with the backend.
"""

from __future__ import annotations

import os
from typing import Any, Literal, overload

from services import registry
from services.tasks import NlpApi, RecommendApi, SpeechApi, VisionApi

BACKEND_ENV = "DEMO_BACKEND"
API_URL_ENV = "DEMO_API_URL"


def backend() -> str:
    """ "inprocess" (default) or "http"."""
    value = os.environ.get(BACKEND_ENV, "inprocess").strip().lower() or "inprocess"
    if value not in ("inprocess", "http"):
        raise ValueError(f"{BACKEND_ENV} must be 'inprocess' or 'http', not {value!r}")
    return value


def api_url() -> str | None:
    url = os.environ.get(API_URL_ENV, "").strip().rstrip("/")
    return url or None


# Typed per task (services/tasks.py's Protocols), so that an editor goes from a page's call to the
# contract, and a type checker catches a wrong option, whichever backend answers.
@overload
def get_service(task: Literal["vision"]) -> VisionApi: ...
@overload
def get_service(task: Literal["speech"]) -> SpeechApi: ...
@overload
def get_service(task: Literal["nlp"]) -> NlpApi: ...
@overload
def get_service(task: Literal["recommend"]) -> RecommendApi: ...
@overload
def get_service(task: str) -> Any: ...


def get_service(task: str) -> Any:
    """The task's service for this process's backend (loaded once per process either way)."""
    if backend() == "http":
        from services.http_client import remote_service  # httpx only when the HTTP backend is used

        return remote_service(task, api_url())
    return registry.load(task)


def task_status(task: str) -> dict[str, Any]:
    """{"state": "waiting" | "loading" | "ready" | "failed", ...} of the task's model on this backend."""
    if backend() == "http":
        from services.http_client import remote_status

        return remote_status(task, api_url())
    from services import preload

    return preload.status(task)
