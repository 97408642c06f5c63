"""REST API over the four task services: the same in-process objects the Streamlit pages use.

    make api                       # uvicorn on 127.0.0.1:$API_PORT (default 8000)
    open http://127.0.0.1:8000/docs

One `APIRouter` per task; every route calls the task's public service methods (services/base.py) and
returns their results unchanged, so a page on the HTTP backend (services/http_client.py) sees the same
dicts as one running in-process.

Errors keep one shape, `{"error": {"type", "message"}}`:
- inside a batch, a bad item gets that entry in its own slot and the response stays 200;
- a bad request gets a 4xx: 404 for an unknown user, item, task or route (and for a MovieLens user's
  profile on a server without the rating files), 413 for a body or batch over the limits, 422 for an
  invalid body or input a service refuses;
- anything else is a bug: logged with its traceback here, answered with a 500 that carries none.

Request bodies are capped per route from the services' own limits (the same ones the pages apply) and
refused before they are read: a declared Content-Length over the cap is answered at once, and a body
without one is counted while it streams in and cut off at the cap.

Models load lazily, once per process, on the first request for their task. `API_PRELOAD=1` starts
loading all four in the background at startup (services.preload), so /health shows their progress
and the first requests do not pay for loading.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Depends, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.auth import ApiKeyMiddleware, add_security_to_schema
from serve.schemas import (
    COMMON_ERRORS,
    NOT_FOUND,
    NPY_BODY,
    NPY_HEADER_ROOM,
    Genre,
    RecommendBatchRequest,
    RecommendRequest,
    SentimentRequest,
    SimilarityRequest,
    SummaryRequest,
    as_service_request,
)
from services import limits, preload, registry
from services.base import json_ready
from services.errors import (
    CorruptInputError,
    InputError,
    InputTooLargeError,
    NotOnThisMachineError,
    UnknownIdError,
)
from services.limits import MAX_ARRAY_SIDE, RECOMMEND, SPEECH, TEXT, VISION
from services.tasks import TASK_NAMES, NlpApi, RecommendApi, SpeechApi, VisionApi

logger = logging.getLogger(__name__)

PRELOAD_ENV = "API_PRELOAD"
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries around the uploaded files
JSON_OVERHEAD = 64 * 1024  # keys, brackets and options around the texts or ratings
JSON_BYTES_PER_CHAR = 6  # JSON may write any character as a \uXXXX escape
BYTES_PER_RATING = 64  # `"1682": 4.5, ` is 13 bytes; room for whitespace and long number spellings
DEFAULT_BODY_LIMIT = 64 * 1024  # routes without a body of their own (GET, self-tests)
MAX_ERROR_MESSAGE_CHARS = 600  # validation messages echo parts of the input; keep the answer short

# One upload per request at most as large as the service accepts one file: the page applies the same
# per-file limit, and a batch of small files fits easily (64 typical digit photos are a few MB).
BODY_LIMITS: dict[str, int] = {
    "/v1/vision": VISION.max_upload_bytes + MULTIPART_OVERHEAD,
    # the drawing canvas's pixels as a .npy file: an RGBA uint8 array of the largest side accepted
    "/v1/vision/array": MAX_ARRAY_SIDE * MAX_ARRAY_SIDE * 4 + NPY_HEADER_ROOM,
    "/v1/speech": SPEECH.max_upload_bytes + MULTIPART_OVERHEAD,
    # as much text as the page's batch file (CSV/TXT) may hold, written as JSON strings
    "/v1/sentiment": TEXT.max_upload_bytes * JSON_BYTES_PER_CHAR + JSON_OVERHEAD,
    "/v1/similarity": 2 * TEXT.max_chars * JSON_BYTES_PER_CHAR + JSON_OVERHEAD,
    "/v1/summary": TEXT.max_chars * JSON_BYTES_PER_CHAR + JSON_OVERHEAD,
    "/v1/recommend": RECOMMEND.max_ratings * BYTES_PER_RATING + JSON_OVERHEAD,
    "/v1/recommend/batch": RECOMMEND.max_batch * RECOMMEND.max_ratings * BYTES_PER_RATING + JSON_OVERHEAD,
}

ERROR_STATUS: tuple[tuple[type[InputError], int], ...] = (
    (UnknownIdError, 404),
    (NotOnThisMachineError, 404),  # a valid request for a resource this server does not hold
    (InputTooLargeError, 413),
)
HTTP_ERROR_TYPES = {
    400: "InvalidRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "InputTooLargeError",
    415: "UnsupportedMediaType",
}


# ---- limits on the request body ---------------------------------------------------------------
def body_limit(path: str) -> int:
    return BODY_LIMITS.get(path.rstrip("/") or "/", DEFAULT_BODY_LIMIT)


class RequestBodyTooLarge(HTTPException):
    """Raised from `receive` while a body streams in; FastAPI re-raises HTTPExceptions unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large_message(limit))


def _too_large_message(limit: int, size: int | None = None) -> str:
    sent = f"the request body is {size:,} bytes" if size is not None else "the request body is too large"
    return f"{sent}; this route accepts at most {limit:,} bytes (send large batches in several requests)"


class BodyLimitMiddleware:
    """Refuse bodies over the route's limit before reading them into memory.

    A declared Content-Length over the limit is answered at once, without calling `receive` (so a
    client waiting on `Expect: 100-continue` never sends the body). A body without a length is
    counted chunk by chunk and cut off at the limit.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = _error_response(413, "InputTooLargeError", _too_large_message(limit, declared))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects malformed lengths; count the body instead
    return None


# ---- errors -----------------------------------------------------------------------------------
def _error_response(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": error_type, "message": message}}, status_code=status)


def input_error_status(err: InputError) -> int:
    for error_class, status in ERROR_STATUS:
        if isinstance(err, error_class):
            return status
    return 422


async def _input_error(_: Request, err: InputError) -> JSONResponse:
    return _error_response(input_error_status(err), type(err).__name__, str(err))


async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
    problems = []
    for problem in err.errors():
        if problem.get("type") == "json_invalid":
            position = problem.get("loc", ("body", "?"))[-1]
            reason = problem.get("ctx", {}).get("error", "JSON decode error")
            problems.append(f"body: not valid JSON ({reason} at character {position})")
            continue
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    message = "invalid request: " + "; ".join(problems)
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        message = message[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    # more files, texts, requests or ratings than a request may hold: over a limit, as a big body is
    if any(problem.get("type") == "too_long" for problem in err.errors()):
        return _error_response(413, "InputTooLargeError", message)
    return _error_response(422, "InvalidRequest", message)


async def _http_error(_: Request, err: HTTPException) -> JSONResponse:
    error_type = HTTP_ERROR_TYPES.get(err.status_code, "HTTPError")
    message = str(err.detail)
    if err.status_code == 404 and message == "Not Found":
        message = "no such route; see /docs for the routes of this API"
    response = _error_response(err.status_code, error_type, message)
    if err.headers:
        response.headers.update(err.headers)
    return response


async def _unexpected_error(request: Request, err: Exception) -> JSONResponse:
    logger.error("unexpected failure on %s %s", request.method, request.url.path, exc_info=err)
    return _error_response(500, "InternalError", "unexpected server error; it has been logged")


# ---- results as JSON ---------------------------------------------------------------------------
def respond(payload: Any) -> JSONResponse:
    # JSONResponse directly: FastAPI's jsonable_encoder is slow on waveforms and saliency maps.
    return JSONResponse(json_ready(payload))


# Where the route handlers get each task's service and its loading state. In-process by default;
# serve/ray_app.py swaps in proxies of its deployments, so the same routes and errors answer on Ray.
_service_provider: dict[str, Callable[[str], Any]] = {}


def set_service_provider(
    load: Callable[[str], Any] | None, status: Callable[[str], dict[str, Any]] | None = None
) -> None:
    """Serve `service(task)` from `load(task)` and /health from `status(task)`; None restores the default."""
    _service_provider.clear()
    if load is not None:
        _service_provider["load"] = load
    if status is not None:
        _service_provider["status"] = status


def service(task: str) -> Any:
    return _service_provider.get("load", registry.load)(task)


# Typed per task (services/tasks.py's Protocols): the routes below read as calls on the contract.
def vision_service() -> VisionApi:
    return service("vision")


def speech_service() -> SpeechApi:
    return service("speech")


def nlp_service() -> NlpApi:
    return service("nlp")


def recommend_service() -> RecommendApi:
    return service("recommend")


def model_status(task: str) -> dict[str, Any]:
    return _service_provider.get("status", preload.status)(task)


def forbid_unknown_query(request: Request) -> None:
    """A query parameter the route does not declare is refused, as an unknown body field is."""
    route = request.scope.get("route")
    declared = {param.alias for param in getattr(getattr(route, "dependant", None), "query_params", [])}
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise RequestValidationError(
            [{"type": "extra_forbidden", "loc": ("query", shown), "msg": "unknown query parameter"}]
        )


STRICT_QUERY = [Depends(forbid_unknown_query)]


# ---- health and model facts --------------------------------------------------------------------
meta = APIRouter(tags=["models"], dependencies=STRICT_QUERY)


@meta.get("/health", summary="Liveness, and which models are loaded")
def health() -> JSONResponse:
    """Always answers (liveness). Per task: "waiting" (loads on first use, or queued for the startup
    preload), "loading", "ready" or "failed"; `preloading` says whether the models load at startup."""
    models = {task: model_status(task) for task in TASK_NAMES}
    return respond({"status": "ok", "preloading": preloading_enabled(), "models": models})


@meta.get("/v1/models", summary="Every model's card facts, metrics and limits", responses=COMMON_ERRORS)
def models() -> JSONResponse:
    return respond(
        {
            "models": {task: service(task).info() for task in TASK_NAMES},
            "request_body_limits": BODY_LIMITS,
        }
    )


def _task(task: str) -> str:
    if task not in TASK_NAMES:
        raise UnknownIdError(f"there is no task {task!r}; the tasks are {', '.join(TASK_NAMES)}")
    return task


TASK_PATH = Path(description=f"one of {', '.join(TASK_NAMES)}")


@meta.get(
    "/v1/models/{task}",
    summary="One model's card facts, metrics and limits",
    responses=COMMON_ERRORS | NOT_FOUND,
)
def model(task: Annotated[str, TASK_PATH]) -> JSONResponse:
    return respond(service(_task(task)).info())


@meta.get(
    "/v1/models/{task}/self-test",
    summary="Answer the task's bundled example",
    responses=COMMON_ERRORS | NOT_FOUND,
)
def self_test(task: Annotated[str, TASK_PATH]) -> JSONResponse:
    return respond(service(_task(task)).self_test())


# ---- vision and speech: uploaded files -----------------------------------------------------------
# Per-file problems (a broken image, silence) are answered in the file's own slot; the batch and
# explanation limits are the service's (services/limits.py), checked by the service itself.
def _read_uploads(files: list[UploadFile]) -> tuple[list[str], list[bytes]]:
    return [upload.filename or "" for upload in files], [upload.file.read() for upload in files]


def _with_names(names: list[str], results: list[dict[str, Any]]) -> JSONResponse:
    # "file" first, as in the service CLIs' JSON lines
    return respond(
        {"results": [{"file": name, **result} for name, result in zip(names, results, strict=True)]}
    )


def _files(task_limits: limits.UploadLimits, what: str) -> Any:
    return File(
        description=f"one to {task_limits.max_batch} {what}, each at most {task_limits.max_upload_bytes:,} bytes",
        min_length=1,
        max_length=task_limits.max_batch,
    )


def _top_k(task_limits: limits.UploadLimits, what: str) -> Any:
    return Query(ge=1, le=task_limits.max_top_k, description=what)


EXPLAIN_IMAGE = Query(description="add the 28×28 model input and a Grad-CAM saliency map")

vision = APIRouter(tags=["vision"], responses=COMMON_ERRORS, dependencies=STRICT_QUERY)


@vision.post("/v1/vision", summary="Recognise the digit in each uploaded image")
def recognise_images(
    files: Annotated[list[UploadFile], _files(VISION, "images (PNG, JPEG, WEBP, BMP, GIF, TIFF)")],
    top_k: Annotated[int, _top_k(VISION, "classes listed per image")] = VISION.top_k,
    explain: Annotated[bool, EXPLAIN_IMAGE] = False,
) -> JSONResponse:
    names, payloads = _read_uploads(files)
    return _with_names(names, vision_service().predict_batch(payloads, top_k=top_k, explain=explain))


@vision.post(
    "/v1/vision/array",
    summary="Recognise the digit in a picture sent as pixels (the drawing canvas)",
    openapi_extra={"requestBody": NPY_BODY},
)
async def recognise_array(
    request: Request,
    top_k: Annotated[int, _top_k(VISION, "classes listed")] = VISION.top_k,
    explain: Annotated[bool, EXPLAIN_IMAGE] = False,
) -> JSONResponse:
    array = _read_npy(await request.body())  # the body limit middleware caps what this reads
    task_service = await run_in_threadpool(vision_service)
    result = await run_in_threadpool(task_service.predict_array, array, top_k=top_k, explain=explain)
    return respond(result)


def _read_npy(data: bytes) -> np.ndarray:
    try:
        # allow_pickle=False: a .npy file may carry pickled objects, which could run code on load
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise CorruptInputError(f"the body is not a readable NumPy .npy array ({err})") from None
    if not isinstance(array, np.ndarray):
        raise CorruptInputError("the body is not a single NumPy .npy array")
    return array


speech = APIRouter(tags=["speech"], responses=COMMON_ERRORS, dependencies=STRICT_QUERY)


@speech.post("/v1/speech", summary="Recognise the digits and voice commands spoken in each uploaded clip")
def recognise_speech(
    files: Annotated[list[UploadFile], _files(SPEECH, "clips (WAV, FLAC, OGG, MP3; M4A with ffmpeg)")],
    top_k: Annotated[int, _top_k(SPEECH, "candidates listed per clip")] = SPEECH.top_k,
    explain: Annotated[
        bool, Query(description="add the waveform, the parts found and per-part scores")
    ] = False,
) -> JSONResponse:
    names, payloads = _read_uploads(files)
    return _with_names(names, speech_service().predict_batch(payloads, top_k=top_k, explain=explain))


# ---- language ----------------------------------------------------------------------------------
language = APIRouter(tags=["language"], responses=COMMON_ERRORS, dependencies=STRICT_QUERY)


@language.post("/v1/sentiment", summary="Sentiment of each text")
def sentiment(request: SentimentRequest) -> JSONResponse:
    return respond({"results": nlp_service().predict_batch(request.texts, explain=request.explain)})


@language.post("/v1/similarity", summary="How similar two texts are in meaning")
def similarity(request: SimilarityRequest) -> JSONResponse:
    return respond(nlp_service().similarity(request.a, request.b))


@language.post("/v1/summary", summary="Extractive summary of a text")
def summary(request: SummaryRequest) -> JSONResponse:
    return respond(nlp_service().summarize(request.text, n_sentences=request.sentences))


# ---- recommendations ---------------------------------------------------------------------------
# In-process, the recommender answers an unknown user or film with flagged popular picks (as Surprise
# does), which suits the pages: their inputs only offer known ids. Over HTTP an id names a resource,
# and a caller who mistyped one should hear so: the routes pass strict_ids=True, and the service
# answers 404 (in its own slot within a batch).
recommend = APIRouter(tags=["recommend"], responses=COMMON_ERRORS, dependencies=STRICT_QUERY)


@recommend.post(
    "/v1/recommend", summary="Films for a new user's ratings or a MovieLens user", responses=NOT_FOUND
)
def recommendations(request: Annotated[RecommendRequest, Body()]) -> JSONResponse:
    return respond(recommend_service().predict(as_service_request(request), strict_ids=True))


@recommend.post("/v1/recommend/batch", summary="Many recommendation requests in one call")
def recommendations_batch(request: RecommendBatchRequest) -> JSONResponse:
    requests = [as_service_request(item) for item in request.requests]
    return respond({"results": recommend_service().predict_batch(requests, strict_ids=True)})


@recommend.get("/v1/recommend/similar/{item_id}", summary="Films like this one", responses=NOT_FOUND)
def similar(
    item_id: int,
    k: Annotated[int, Query(ge=1, le=RECOMMEND.max_k, description="films to return")] = RECOMMEND.k,
    genre: Annotated[Genre | None, Query(description="only films of this genre")] = None,
) -> JSONResponse:
    return respond(recommend_service().similar_items(item_id, k=k, genre=genre, strict_ids=True))


@recommend.get("/v1/recommend/search", summary="Find films in the catalogue by title")
def search(
    q: Annotated[str, Query(description="part of a title", max_length=RECOMMEND.max_query_chars)],
    limit: Annotated[int, Query(ge=1, le=RECOMMEND.max_search_results)] = RECOMMEND.search_results,
) -> JSONResponse:
    return respond(recommend_service().search(q, limit=limit))


@recommend.get(
    "/v1/recommend/users/{user_id}/profile",
    summary="A MovieLens user's top films and taste",
    responses=NOT_FOUND,
)
def user_profile(user_id: int) -> JSONResponse:
    return respond(recommend_service().user_profile(user_id))


@recommend.get("/v1/recommend/map", summary="2-D map of the films' latent factors")
def item_map() -> JSONResponse:
    return respond({"results": recommend_service().item_map()})


@recommend.get("/v1/recommend/catalogue", summary="Every film with its id, title, year and genres")
def catalogue() -> JSONResponse:
    return respond({"results": recommend_service().catalogue()})


# ---- the app -----------------------------------------------------------------------------------
def preloading_enabled() -> bool:
    return os.environ.get(PRELOAD_ENV, "").strip() == "1"


@asynccontextmanager
async def lifespan(_: FastAPI):
    if preloading_enabled():
        # In the background, as the Streamlit app does: /health answers at once and shows progress,
        # and a request for a model still loading waits for that same instance.
        preload.start_background_loading()
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="AI demo API",
        summary="Digits in images and speech, sentiment, similarity, summaries and film recommendations.",
        description=(__doc__ or "").split("\n\n")[0],
        version="1.0",
        lifespan=lifespan,
    )
    for router in (meta, vision, speech, language, recommend):
        app.include_router(router)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(ApiKeyMiddleware)  # outermost: a request without the key is refused unread
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches the schema; the key's schemes are added when API_KEY is set
        return add_security_to_schema(plain_openapi())

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()

__all__ = ["app", "create_app", "body_limit", "BODY_LIMITS"]
