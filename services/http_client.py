"""The pages' HTTP backend: a client of the REST API (serve/api.py) with the services' own methods.

`remote_service(task, url)` returns an object with the same public methods and result shapes as the
task's in-process service (see services/base.py), so a page does not change when
`DEMO_BACKEND=http` and `DEMO_API_URL=http://host:8000` send its calls to a server instead.

Errors come back as they would in-process: a 4xx answer raises the services.errors class it names
(UnknownIdError, InputTooLargeError, ...), with the server's message. An API that cannot be reached
raises `ApiUnavailableError`; an answer that is not the API's (a 5xx, a proxy's HTML page, a route
this server lacks) raises `ApiError`.

`api_examples()` lists one ready request per route, for the API page's curl commands and "try it".
"""

from __future__ import annotations

import io
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import numpy as np

from services import errors, limits
from services.base import json_ready
from services.limits import NPY_MEDIA_TYPE
from services.tasks import spec

__all__ = [
    "ApiError",
    "ApiUnavailableError",
    "ApiExample",
    "api_examples",
    "json_ready",
    "open_client",
    "remote_service",
    "remote_status",
]

CONNECT_TIMEOUT_S = 5.0  # a server that is up accepts at once; fail fast when nothing listens
READ_TIMEOUT_S = 300.0  # the first request for a task loads its model on the server (tens of seconds)
API_KEY_ENV = "API_KEY"  # sent as `Authorization: Bearer <key>` when set (serve/api.py checks it)
DEFAULT_API_URL = "http://127.0.0.1:8000"  # where `make api` listens unless API_HOST/API_PORT say otherwise


class ApiUnavailableError(RuntimeError):
    """The REST API did not answer (nothing listening, wrong address, timeout)."""


class ApiError(RuntimeError):
    """The server answered, but not as the REST API does (a 5xx, a proxy page, an unknown route)."""


def open_client(base_url: str) -> httpx.Client:
    """An HTTP client for the API at `base_url` (the pages' backend and the API page's "try it")."""
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        headers=auth_headers(),
    )


def auth_headers() -> dict[str, str]:
    """The API key from the environment as a bearer token, when one is set."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def unavailable_message(base_url: str, err: Exception) -> str:
    return (
        f"the REST API at {base_url} did not answer ({type(err).__name__}: {err}); "
        "start it with `make api`, or unset DEMO_BACKEND to run the models in this process"
    )


class _RemoteService:
    task: str

    def __init__(self, base_url: str, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or open_client(self.base_url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task} at {self.base_url}>"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ApiUnavailableError(unavailable_message(self.base_url, err)) from err
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code < 400 and payload is not None:
            return payload
        error = payload.get("error") if isinstance(payload, Mapping) else None
        if 400 <= response.status_code < 500 and isinstance(error, Mapping):
            if str(error.get("type", "")) not in ("NotFound", "MethodNotAllowed", "Unauthorized"):
                errors.raise_error_entry(payload)
        detail = error.get("message") if isinstance(error, Mapping) else response.text[:200]
        raise ApiError(f"{method} {self.base_url}{path} answered {response.status_code}: {detail}")

    # ---- shared by the four tasks --------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{self.task}")

    def self_test(self) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{self.task}/self-test")


def _one(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A one-item batch's answer, or the exception predict raises in-process."""
    errors.raise_error_entry(results[0])
    return results[0]


def _without_file(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The API names each upload like the CLIs do; the in-process service knows no file names.
    return [{key: value for key, value in result.items() if key != "file"} for result in results]


class _RemoteUploads(_RemoteService):
    """vision and speech: bytes in, multipart field `files` on the wire."""

    route: str

    def _post_files(self, items: Sequence[bytes], **params: Any) -> list[dict[str, Any]]:
        files = [
            ("files", (f"item-{i}", bytes(data), "application/octet-stream")) for i, data in enumerate(items)
        ]
        return _without_file(self._call("POST", self.route, files=files, params=params)["results"])

    def _predict_files(self, items: Sequence[bytes], top_k: int, explain: bool) -> list[dict[str, Any]]:
        if not items:
            return []
        return self._post_files(items, top_k=top_k, explain=str(explain).lower())


class RemoteVision(_RemoteUploads):
    task = "vision"
    route = "/v1/vision"

    def predict(
        self, data: bytes, *, top_k: int = limits.VISION.top_k, explain: bool = False
    ) -> dict[str, Any]:
        return _one(self._predict_files([data], top_k, explain))

    def predict_batch(
        self, items: Sequence[bytes], *, top_k: int = limits.VISION.top_k, explain: bool = False
    ) -> list[dict[str, Any]]:
        return self._predict_files(items, top_k, explain)

    def predict_array(
        self, array: Any, *, top_k: int = limits.VISION.top_k, explain: bool = False
    ) -> dict[str, Any]:
        """The canvas's RGBA array travels as a .npy file, so the server decodes exactly these pixels."""
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        return self._call(
            "POST",
            "/v1/vision/array",
            content=buffer.getvalue(),
            headers={"content-type": NPY_MEDIA_TYPE},
            params={"top_k": top_k, "explain": str(explain).lower()},
        )


class RemoteSpeech(_RemoteUploads):
    task = "speech"
    route = "/v1/speech"

    def predict(
        self, data: bytes, *, top_k: int = limits.SPEECH.top_k, explain: bool = False
    ) -> dict[str, Any]:
        return _one(self._predict_files([data], top_k, explain))

    def predict_batch(
        self, items: Sequence[bytes], *, top_k: int = limits.SPEECH.top_k, explain: bool = False
    ) -> list[dict[str, Any]]:
        return self._predict_files(items, top_k, explain)


class RemoteNlp(_RemoteService):
    task = "nlp"

    def predict(self, text: str, *, explain: bool = False) -> dict[str, Any]:
        return _one(self.predict_batch([text], explain=explain))

    def predict_batch(self, texts: Sequence[str], *, explain: bool = False) -> list[dict[str, Any]]:
        if not texts:
            return []
        return self._call("POST", "/v1/sentiment", json={"texts": list(texts), "explain": explain})["results"]

    def similarity(self, a: str, b: str) -> dict[str, Any]:
        return self._call("POST", "/v1/similarity", json={"a": a, "b": b})

    def summarize(self, text: str, n_sentences: int = limits.TEXT.summary_sentences) -> dict[str, Any]:
        return self._call("POST", "/v1/summary", json={"text": text, "sentences": n_sentences})


class RemoteRecommend(_RemoteService):
    task = "recommend"

    def predict(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/recommend", json=json_ready(request))

    def predict_batch(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not requests:
            return []
        return self._call("POST", "/v1/recommend/batch", json={"requests": json_ready(list(requests))})[
            "results"
        ]

    def similar_items(
        self, item_id: Any, k: int = limits.RECOMMEND.k, genre: str | None = None
    ) -> dict[str, Any]:
        params = {"k": k} | ({"genre": genre} if genre else {})
        return self._call("GET", f"/v1/recommend/similar/{quote(str(item_id), safe='')}", params=params)

    def user_profile(self, user_id: Any) -> dict[str, Any]:
        return self._call("GET", f"/v1/recommend/users/{quote(str(user_id), safe='')}/profile")

    def search(self, query: str, limit: int = limits.RECOMMEND.search_results) -> dict[str, Any]:
        return self._call("GET", "/v1/recommend/search", params={"q": query, "limit": limit})

    def item_map(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/recommend/map")["results"]

    def catalogue(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/recommend/catalogue")["results"]


REMOTE_SERVICES: dict[str, type[_RemoteService]] = {
    remote.task: remote for remote in (RemoteVision, RemoteSpeech, RemoteNlp, RemoteRecommend)
}


def remote_service(task: str, url: str | None, client: httpx.Client | None = None) -> Any:
    """The task's service as a client of the REST API at `url` (no request is made until a call).

    `client` lets tests pass FastAPI's TestClient (an httpx.Client) instead of opening a socket.
    """
    spec(task)  # an unknown task is a KeyError naming the known ones
    if not url and client is None:
        raise ApiUnavailableError(
            "DEMO_BACKEND=http needs the API's address in DEMO_API_URL, e.g. http://127.0.0.1:8000"
        )
    return REMOTE_SERVICES[task](url or str(client.base_url), client)


STATUS_TIMEOUT_S = 3.0  # the home page polls this while models load; a slow answer must not stall it


def remote_status(task: str, url: str | None, client: httpx.Client | None = None) -> dict[str, Any]:
    """The task's model state on the API, as services.preload.status reports it in-process.

    A server that loads models on first use reports them "waiting" until asked; to the pages that is
    "ready" (the first call loads it), or the home page would wait for a load nobody started.
    """
    base_url = url or (str(client.base_url) if client is not None else "")
    if not base_url:
        return {"state": "failed", "error": "DEMO_BACKEND=http needs the API's address in DEMO_API_URL"}
    try:
        if client is None:
            with httpx.Client(
                base_url=base_url, timeout=STATUS_TIMEOUT_S, headers=auth_headers()
            ) as own_client:
                health = own_client.get("/health").json()
        else:
            health = client.get("/health").json()
        state = dict(health["models"][task])
    except (httpx.TransportError, ValueError, KeyError, TypeError) as err:
        return {"state": "failed", "error": unavailable_message(base_url, err)}
    if state.get("state") == "waiting" and not health.get("preloading"):
        return {"state": "ready", "loads_on_first_use": True}
    return state


# ---- one ready request per route, for the API page -------------------------------------------
@dataclass(frozen=True)
class ApiExample:
    """A request to one route: what the API page shows as curl and sends on "try it"."""

    title: str
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None  # JSON body
    files: tuple[str, ...] = ()  # paths uploaded as the multipart field `files`
    array_from: str | None = None  # an image sent as the RGBA .npy array the canvas would send
    note: str = ""

    def url(self, base_url: str) -> str:
        query = f"?{urlencode(self.params)}" if self.params else ""
        return f"{base_url.rstrip('/')}{self.path}{query}"

    def curl(self, base_url: str) -> str:
        parts = ["curl", "-sS"]
        if self.method != "GET":
            parts += ["-X", self.method]
        if self.body is not None:
            parts += ["-H", "Content-Type: application/json", "-d", json.dumps(self.body, ensure_ascii=False)]
        for path in self.files:
            parts += ["-F", f"files=@{path}"]
        command = shlex.join([*parts, self.url(base_url)])
        if os.environ.get(API_KEY_ENV, "").strip():  # the shell fills in the key: never printed here
            command = command.replace("curl -sS", 'curl -sS -H "Authorization: Bearer $API_KEY"', 1)
        if self.array_from:
            make_npy = (
                "import numpy as np; from PIL import Image; "
                f"np.save('canvas.npy', np.asarray(Image.open({self.array_from!r}).convert('RGBA')))"
            )
            upload = shlex.join(
                [
                    "curl",
                    "-sS",
                    "-X",
                    "POST",
                    "-H",
                    f"Content-Type: {NPY_MEDIA_TYPE}",
                    "--data-binary",
                    "@canvas.npy",
                ]
            )
            if os.environ.get(API_KEY_ENV, "").strip():
                upload = upload.replace("curl -sS", 'curl -sS -H "Authorization: Bearer $API_KEY"', 1)
            command = f"python -c {shlex.quote(make_npy)} && {upload} {shlex.quote(self.url(base_url))}"
        return command

    def send(self, client: httpx.Client) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": self.params}
        if self.body is not None:
            kwargs["json"] = self.body
        if self.files:
            kwargs["files"] = [("files", (Path(path).name, Path(path).read_bytes())) for path in self.files]
        if self.array_from:
            from PIL import Image

            buffer = io.BytesIO()
            np.save(buffer, np.asarray(Image.open(self.array_from).convert("RGBA")), allow_pickle=False)
            kwargs["content"] = buffer.getvalue()
            kwargs["headers"] = {"content-type": NPY_MEDIA_TYPE}
        return client.request(self.method, self.path, **kwargs)


def api_examples() -> list[ApiExample]:
    """One example per route, built from the services' bundled examples."""
    from services import nlp, recommend, speech, vision

    image = vision.example_inputs()[0]["path"]
    clips = [example["path"] for example in speech.example_inputs()]
    texts = nlp.example_inputs()
    profile = recommend.example_inputs()[0]
    ratings = {str(item): rating for item, rating in list(profile["ratings"].items())[:5]}
    first_item = next(iter(profile["ratings"]))
    return [
        ApiExample("Health and loaded models", "GET", "/health"),
        ApiExample("Every model's facts, metrics and limits", "GET", "/v1/models"),
        ApiExample("One model's facts", "GET", "/v1/models/vision"),
        ApiExample("A model's self-test", "GET", "/v1/models/speech/self-test"),
        ApiExample(
            "Digit in an image (one or many files)", "POST", "/v1/vision", {"top_k": 3}, files=(image,)
        ),
        ApiExample(
            "Digit in a drawing (canvas array)",
            "POST",
            "/v1/vision/array",
            {"top_k": 3},
            array_from=image,
            note="the page's drawing canvas sends its RGBA pixels as a NumPy .npy file",
        ),
        ApiExample(
            "Spoken digits and commands (one or many clips)",
            "POST",
            "/v1/speech",
            {"top_k": 3},
            files=tuple(clips[:2]),
        ),
        ApiExample(
            "Sentiment (one or many texts)",
            "POST",
            "/v1/sentiment",
            body={"texts": list(texts["sentiment"].values())[:2], "explain": False},
        ),
        ApiExample(
            "Similarity of two texts",
            "POST",
            "/v1/similarity",
            body={"a": texts["similarity"][0], "b": texts["similarity"][1]},
        ),
        ApiExample("Summary", "POST", "/v1/summary", body={"text": texts["article"], "sentences": 3}),
        ApiExample(
            "Films for a new user's ratings", "POST", "/v1/recommend", body={"ratings": ratings, "k": 5}
        ),
        ApiExample("Films for a MovieLens user", "POST", "/v1/recommend", body={"user": 42, "k": 5}),
        ApiExample(
            "Several recommendation requests",
            "POST",
            "/v1/recommend/batch",
            body={"requests": [{"ratings": ratings, "k": 3}, {"user": 42, "k": 3}]},
        ),
        ApiExample("Films like this one", "GET", f"/v1/recommend/similar/{first_item}", {"k": 5}),
        ApiExample("Catalogue search", "GET", "/v1/recommend/search", {"q": "star", "limit": 5}),
        ApiExample(
            "A MovieLens user's profile",
            "GET",
            "/v1/recommend/users/42/profile",
            note="needs the MovieLens-100K files on the server (404 otherwise)",
        ),
        ApiExample("Map of the films' latent factors", "GET", "/v1/recommend/map"),
        ApiExample("The whole catalogue", "GET", "/v1/recommend/catalogue"),
    ]
