"""REST API over the four task services: the same in-process objects the Streamlit pages use.

    make api                       # uvicorn on 127.0.0.1:$API_PORT (default 8000)
    open http://127.0.0.1:8000/docs

One `APIRouter` per task; every route calls the task's public service methods (services/base.py) and
returns their results unchanged, so a page on the HTTP backend (services/http_client.py) sees the same
dicts as one running in-process.

Errors keep one shape, `{"error": {"type", "message"}}`:
- inside a batch, a bad item gets that entry in its own slot and the response stays 200;
- a bad request gets a 4xx: 404 for an unknown user, item, task or route, 413 for a body or batch over
  the limits, 422 for an invalid body or input a service refuses;
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
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import nlp as nlp_module
from services import preload, registry
from services import recommend as recommend_module
from services import speech as speech_module
from services import vision as vision_module
from services.base import error_entry
from services.errors import CorruptInputError, InputError, InputTooLargeError, UnknownIdError
from services.http_client import NPY_MEDIA_TYPE, json_ready
from services.image_io import MAX_ARRAY_SIDE

logger = logging.getLogger(__name__)

PRELOAD_ENV = "API_PRELOAD"
MULTIPART_OVERHEAD = 64 * 1024  # part headers and boundaries around the uploaded files
JSON_OVERHEAD = 64 * 1024  # keys, brackets and options around the texts or ratings
JSON_BYTES_PER_CHAR = 6  # JSON may write any character as a \uXXXX escape
BYTES_PER_RATING = 64  # `"1682": 4.5, ` is 13 bytes; room for whitespace and long number spellings
NPY_HEADER_ROOM = 4096  # a .npy header is at most a few hundred bytes
DEFAULT_BODY_LIMIT = 64 * 1024  # routes without a body of their own (GET, self-tests)
MAX_EXPLAINED_TEXTS = 16  # word highlights cost about a second each; the page explains one at a time
MAX_ERROR_MESSAGE_CHARS = 600  # validation messages echo parts of the input; keep the answer short

# One upload per request at most as large as the service accepts one file: the page applies the same
# per-file limit, and a batch of small files fits easily (64 typical digit photos are a few MB).
BODY_LIMITS: dict[str, int] = {
    "/v1/vision": vision_module.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD,
    # the drawing canvas's pixels as a .npy file: an RGBA uint8 array of the largest side accepted
    "/v1/vision/array": MAX_ARRAY_SIDE * MAX_ARRAY_SIDE * 4 + NPY_HEADER_ROOM,
    "/v1/speech": speech_module.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD,
    # as much text as the page's batch file (CSV/TXT) may hold, written as JSON strings
    "/v1/sentiment": nlp_module.MAX_UPLOAD_BYTES * JSON_BYTES_PER_CHAR + JSON_OVERHEAD,
    "/v1/similarity": 2 * nlp_module.MAX_CHARS * JSON_BYTES_PER_CHAR + JSON_OVERHEAD,
    "/v1/summary": nlp_module.MAX_CHARS * JSON_BYTES_PER_CHAR + JSON_OVERHEAD,
    "/v1/recommend": recommend_module.MAX_RATINGS * BYTES_PER_RATING + JSON_OVERHEAD,
    "/v1/recommend/batch": recommend_module.MAX_BATCH * recommend_module.MAX_RATINGS * BYTES_PER_RATING
    + JSON_OVERHEAD,
}

ERROR_STATUS: tuple[tuple[type[InputError], int], ...] = (
    (UnknownIdError, 404),
    (InputTooLargeError, 413),
)
HTTP_ERROR_TYPES = {
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


def model_status(task: str) -> dict[str, Any]:
    return _service_provider.get("status", preload.status)(task)


def _check_batch(task_service: Any, count: int, what: str) -> None:
    limit = getattr(task_service, "max_batch", None)
    if limit is not None and count > limit:
        raise InputTooLargeError(f"{count} {what} in one request; the limit is {limit}")


def _one_by_one(items: Sequence[Any], call: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """For options predict_batch does not take (explain): one call per item, errors in their slot."""
    results = []
    for item in items:
        try:
            results.append(call(item))
        except InputError as err:
            results.append(error_entry(err))
    return results


# ---- health and model facts --------------------------------------------------------------------
meta = APIRouter(tags=["models"])


@meta.get("/health", summary="Liveness, and which models are loaded")
def health() -> JSONResponse:
    """Always answers (liveness). Per task: "waiting" (loads on first use, or queued for the startup
    preload), "loading", "ready" or "failed"; `preloading` says whether the models load at startup."""
    models = {task: model_status(task) for task in registry.TASK_MODULES}
    return respond({"status": "ok", "preloading": preloading_enabled(), "models": models})


@meta.get("/v1/models", summary="Every model's card facts, metrics and limits")
def models() -> JSONResponse:
    return respond(
        {
            "models": {task: service(task).info() for task in registry.TASK_MODULES},
            "request_body_limits": BODY_LIMITS,
        }
    )


def _task(task: str) -> str:
    if task not in registry.TASK_MODULES:
        raise UnknownIdError(f"there is no task {task!r}; the tasks are {', '.join(registry.TASK_MODULES)}")
    return task


@meta.get("/v1/models/{task}", summary="One model's card facts, metrics and limits")
def model(task: Annotated[str, Path(description="vision, speech, nlp or recommend")]) -> JSONResponse:
    return respond(service(_task(task)).info())


@meta.get("/v1/models/{task}/self-test", summary="Answer the task's bundled example")
def self_test(task: Annotated[str, Path(description="vision, speech, nlp or recommend")]) -> JSONResponse:
    return respond(service(_task(task)).self_test())


# ---- vision and speech: uploaded files -----------------------------------------------------------
def _read_uploads(files: list[UploadFile], task_service: Any) -> tuple[list[str], list[bytes]]:
    _check_batch(task_service, len(files), "files")
    return [upload.filename or "" for upload in files], [upload.file.read() for upload in files]


def _with_names(names: list[str], results: list[dict[str, Any]]) -> JSONResponse:
    # "file" first, as in the service CLIs' JSON lines
    return respond(
        {"results": [{"file": name, **result} for name, result in zip(names, results, strict=True)]}
    )


vision = APIRouter(tags=["vision"])


@vision.post("/v1/vision", summary="Recognise the digit in each uploaded image")
def recognise_images(
    files: Annotated[
        list[UploadFile], File(description="one or many images (PNG, JPEG, WEBP, BMP, GIF, TIFF)")
    ],
    top_k: Annotated[int, Query(ge=1, le=10, description="classes listed per image")] = vision_module.TOP_K,
    explain: Annotated[
        bool, Query(description="add the 28×28 model input and a Grad-CAM saliency map")
    ] = False,
) -> JSONResponse:
    task_service = service("vision")
    names, payloads = _read_uploads(files, task_service)
    if explain:
        results = _one_by_one(payloads, lambda data: task_service.predict(data, top_k=top_k, explain=True))
    else:
        results = task_service.predict_batch(payloads, top_k=top_k)
    return _with_names(names, results)


@vision.post(
    "/v1/vision/array",
    summary="Recognise the digit in a picture sent as pixels (the drawing canvas)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {NPY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "a NumPy .npy file (no pickles) of an (H, W), (H, W, 3) or (H, W, 4) array",
        }
    },
)
async def recognise_array(
    request: Request,
    top_k: Annotated[int, Query(ge=1, le=10, description="classes listed")] = vision_module.TOP_K,
    explain: Annotated[
        bool, Query(description="add the 28×28 model input and a Grad-CAM saliency map")
    ] = False,
) -> JSONResponse:
    array = _read_npy(await request.body())  # the body limit middleware caps what this reads
    task_service = await run_in_threadpool(service, "vision")
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


speech = APIRouter(tags=["speech"])


@speech.post("/v1/speech", summary="Recognise the spoken digits in each uploaded clip")
def recognise_speech(
    files: Annotated[
        list[UploadFile], File(description="one or many clips (WAV, FLAC, OGG, MP3; M4A with ffmpeg)")
    ],
    top_k: Annotated[int, Query(ge=1, le=20, description="candidates listed per clip")] = speech_module.TOP_K,
    explain: Annotated[
        bool, Query(description="add the waveform, the parts found and per-part scores")
    ] = False,
) -> JSONResponse:
    task_service = service("speech")
    names, payloads = _read_uploads(files, task_service)
    if explain:
        results = _one_by_one(payloads, lambda data: task_service.predict(data, top_k=top_k, explain=True))
    else:
        results = task_service.predict_batch(payloads, top_k=top_k)
    return _with_names(names, results)


# ---- language ----------------------------------------------------------------------------------
class SentimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(description="one or many texts; a bad text gets an error in its own slot")
    explain: bool = Field(False, description=f"word highlights (at most {MAX_EXPLAINED_TEXTS} texts)")


class SimilarityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str
    b: str


class SummaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    sentences: int = Field(3, description="sentences in the summary")


language = APIRouter(tags=["language"])


@language.post("/v1/sentiment", summary="Sentiment of each text")
def sentiment(request: SentimentRequest) -> JSONResponse:
    task_service = service("nlp")
    _check_batch(task_service, len(request.texts), "texts")
    if request.explain:
        if len(request.texts) > MAX_EXPLAINED_TEXTS:
            raise InputTooLargeError(
                f"{len(request.texts)} texts with explain=true; word highlights are limited to "
                f"{MAX_EXPLAINED_TEXTS} texts per request"
            )
        results = _one_by_one(request.texts, lambda text: task_service.predict(text, explain=True))
    else:
        results = task_service.predict_batch(request.texts)
    return respond({"results": results})


@language.post("/v1/similarity", summary="How similar two texts are in meaning")
def similarity(request: SimilarityRequest) -> JSONResponse:
    return respond(service("nlp").similarity(request.a, request.b))


@language.post("/v1/summary", summary="Extractive summary of a text")
def summary(request: SummaryRequest) -> JSONResponse:
    return respond(service("nlp").summarize(request.text, n_sentences=request.sentences))


# ---- recommendations ---------------------------------------------------------------------------
class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratings: dict[str, float] | None = Field(
        None, description="a new user's ratings, {movie id: 1–5}", examples=[{"50": 5, "172": 4.5}]
    )
    user: int | None = Field(None, description="a MovieLens-100K user id")
    k: int = Field(10, description="recommendations to return")
    genre: str | None = Field(None, description="only films of this genre")

    @model_validator(mode="after")
    def _one_kind(self) -> RecommendRequest:
        if (self.ratings is None) == (self.user is None):
            raise ValueError("give exactly one of 'ratings' or 'user'")
        return self

    def as_service_request(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True) | {"genre": self.genre}


class RecommendBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[RecommendRequest]


recommend = APIRouter(tags=["recommend"])


# In-process, the recommender answers an unknown user or film with flagged popular picks (as
# Surprise does), which suits the pages: their inputs only offer known ids. Over HTTP an id names a
# resource, and a caller who mistyped one should hear so: 404 (in its own slot within a batch).
def _check_user(task_service: Any, user_id: int) -> None:
    if not 1 <= user_id <= task_service.n_users:
        raise UnknownIdError(
            f"there is no user {user_id}; MovieLens-100K users go from 1 to {task_service.n_users} "
            "(send 'ratings' instead to get picks for a new user)"
        )


def _check_item(task_service: Any, item_id: int) -> None:
    if not 1 <= item_id <= task_service.n_items:
        raise UnknownIdError(f"there is no movie with id {item_id} (ids go from 1 to {task_service.n_items})")


@recommend.post("/v1/recommend", summary="Films for a new user's ratings or a MovieLens user")
def recommendations(request: RecommendRequest) -> JSONResponse:
    task_service = service("recommend")
    if request.user is not None:
        _check_user(task_service, request.user)
    return respond(task_service.predict(request.as_service_request()))


@recommend.post("/v1/recommend/batch", summary="Many recommendation requests in one call")
def recommendations_batch(request: RecommendBatchRequest) -> JSONResponse:
    task_service = service("recommend")
    _check_batch(task_service, len(request.requests), "requests")
    results: list[dict[str, Any] | None] = [None] * len(request.requests)
    known = []
    for slot, item in enumerate(request.requests):
        try:
            if item.user is not None:
                _check_user(task_service, item.user)
            known.append(slot)
        except UnknownIdError as err:
            results[slot] = error_entry(err)
    requests = [request.requests[slot].as_service_request() for slot in known]
    answers = task_service.predict_batch(requests) if requests else []
    for slot, answer in zip(known, answers, strict=True):
        results[slot] = answer
    return respond({"results": results})


@recommend.get("/v1/recommend/similar/{item_id}", summary="Films like this one")
def similar(
    item_id: int,
    k: Annotated[int, Query(description="films to return")] = 10,
    genre: Annotated[str | None, Query(description="only films of this genre")] = None,
) -> JSONResponse:
    task_service = service("recommend")
    _check_item(task_service, item_id)
    return respond(task_service.similar_items(item_id, k=k, genre=genre))


@recommend.get("/v1/recommend/search", summary="Find films in the catalogue by title")
def search(
    q: Annotated[str, Query(description="part of a title", max_length=200)],
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> JSONResponse:
    return respond(service("recommend").search(q, limit=limit))


@recommend.get("/v1/recommend/users/{user_id}/profile", summary="A MovieLens user's top films and taste")
def user_profile(user_id: int) -> JSONResponse:
    return respond(service("recommend").user_profile(user_id))


@recommend.get("/v1/recommend/map", summary="2-D map of the films' latent factors")
def item_map() -> JSONResponse:
    return respond({"results": service("recommend").item_map()})


@recommend.get("/v1/recommend/catalogue", summary="Every film with its id, title, year and genres")
def catalogue() -> JSONResponse:
    return respond({"results": service("recommend").catalogue()})


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
    return app


app = create_app()

__all__ = ["app", "create_app", "body_limit", "BODY_LIMITS"]
