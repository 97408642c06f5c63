"""The REST API (serve/api.py) through FastAPI's TestClient: every route, every error shape, the limits.

Results are compared with the same call on the in-process service, so the API is checked to add
nothing and lose nothing; only timings differ between two runs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serve import api
from services import limits, registry
from services.errors import InputError
from services.http_client import api_examples, json_ready

REPO_ROOT = Path(__file__).resolve().parents[1]
VISION_EXAMPLES = REPO_ROOT / "models" / "vision" / "examples"
SPEECH_EXAMPLES = REPO_ROOT / "models" / "speech" / "examples"


def comparable(value):
    """A result without its timings (which differ between any two runs) and as JSON would carry it."""
    value = json_ready(value)
    if isinstance(value, dict):  # latency_ms, stages_ms, load_ms, fold_in_ms, ...
        return {
            key: comparable(item)
            for key, item in value.items()
            if key != "stages_ms" and not key.endswith("_ms")
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def without_file(results):
    return [{key: value for key, value in result.items() if key != "file"} for result in results]


def assert_error(response, status: int, error_type: str | None = None) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    assert body["error"]["message"], body
    assert "Traceback" not in response.text
    if error_type is not None:
        assert body["error"]["type"] == error_type, body
    return body["error"]


@pytest.fixture(scope="module")
def client():
    # raise_server_exceptions=False: a bug shows up as the 500 a real client would get
    with TestClient(api.app, raise_server_exceptions=False) as test_client:
        yield test_client


def service(task: str):
    return registry.load(task)


def image_bytes(name: str = "drawn_3.png") -> bytes:
    return (VISION_EXAMPLES / name).read_bytes()


def clip_bytes() -> bytes:
    return sorted(SPEECH_EXAMPLES.glob("*.wav"))[0].read_bytes()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ---- health, models, docs ---------------------------------------------------------------------
def test_health_lists_every_task(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["preloading"] is False
    assert set(body["models"]) == set(registry.TASK_MODULES)
    for task, state in body["models"].items():
        assert state["state"] == ("ready" if registry.is_loaded(task) else "waiting"), (task, state)


def test_openapi_and_docs_describe_every_route(client):
    schema = client.get("/openapi.json").json()
    expected = {
        "/health",
        "/v1/models",
        "/v1/models/{task}",
        "/v1/models/{task}/self-test",
        "/v1/vision",
        "/v1/vision/array",
        "/v1/speech",
        "/v1/sentiment",
        "/v1/similarity",
        "/v1/summary",
        "/v1/recommend",
        "/v1/recommend/batch",
        "/v1/recommend/similar/{item_id}",
        "/v1/recommend/search",
        "/v1/recommend/users/{user_id}/profile",
        "/v1/recommend/map",
        "/v1/recommend/catalogue",
    }
    assert expected <= set(schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_models_route_returns_each_services_info_and_the_limits(client):
    response = client.get("/v1/models")
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert set(body["models"]) == set(registry.TASK_MODULES)
    for task, info in body["models"].items():
        assert comparable(info) == comparable(service(task).info()), task
    assert body["request_body_limits"] == api.BODY_LIMITS


@pytest.mark.parametrize("task", sorted(registry.TASK_MODULES))
def test_model_route_and_self_test_per_task(client, task):
    info = client.get(f"/v1/models/{task}")
    assert info.status_code == 200, info.text[:500]
    assert comparable(info.json()) == comparable(service(task).info())
    answer = client.get(f"/v1/models/{task}/self-test")
    assert answer.status_code == 200, answer.text[:500]
    assert {"input", "output", "latency_ms"} <= set(answer.json())


def test_unknown_task_is_404(client):
    assert_error(client.get("/v1/models/weather"), 404, "UnknownIdError")
    assert_error(client.get("/v1/models/weather/self-test"), 404, "UnknownIdError")


# ---- vision -----------------------------------------------------------------------------------
def test_vision_batch_matches_the_service_and_keeps_a_bad_file_in_its_slot(client):
    payloads = [image_bytes("drawn_3.png"), b"this is not an image", image_bytes("mnist_test_0000.png")]
    files = [("files", (f"f{i}.png", data, "image/png")) for i, data in enumerate(payloads)]
    response = client.post("/v1/vision", files=files)
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert [r["file"] for r in results] == ["f0.png", "f1.png", "f2.png"]
    assert comparable(without_file(results)) == comparable(service("vision").predict_batch(payloads))
    bad = results[1]["error"]
    assert set(bad) == {"type", "message"} and bad["type"] == "UnsupportedFormatError"
    assert results[0]["label"] == "3"


def test_vision_explain_and_top_k_match_the_service(client):
    data = image_bytes()
    response = client.post("/v1/vision?explain=true&top_k=5", files=[("files", ("d.png", data, "image/png"))])
    assert response.status_code == 200, response.text[:500]
    (result,) = without_file(response.json()["results"])
    assert len(result["top_k"]) == 5
    assert comparable(result) == comparable(service("vision").predict(data, top_k=5, explain=True))


def test_vision_array_route_matches_predict_array(client):
    rgba = np.asarray(Image.open(VISION_EXAMPLES / "drawn_4.png").convert("RGBA"))
    response = client.post(
        "/v1/vision/array?explain=true", content=npy(rgba), headers={"content-type": "application/x-npy"}
    )
    assert response.status_code == 200, response.text[:500]
    assert comparable(response.json()) == comparable(service("vision").predict_array(rgba, explain=True))


def test_vision_array_route_refuses_bad_arrays(client):
    headers = {"content-type": "application/x-npy"}
    assert_error(
        client.post("/v1/vision/array", content=b"not npy", headers=headers), 422, "CorruptInputError"
    )
    assert_error(client.post("/v1/vision/array", content=b"", headers=headers), 422)
    # an object array can only be stored pickled; loading it would run code, so it is refused
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object))  # np.save pickles object arrays by default
    assert_error(client.post("/v1/vision/array", content=pickled.getvalue(), headers=headers), 422)
    wrong_shape = npy(np.zeros((5, 5, 5, 5), dtype=np.uint8))
    assert_error(client.post("/v1/vision/array", content=wrong_shape, headers=headers), 422)


def test_vision_refuses_too_many_files_and_a_missing_field(client):
    limit = service("vision").max_batch
    files = [("files", (f"{i}.png", b"x", "image/png")) for i in range(limit + 1)]
    assert_error(client.post("/v1/vision", files=files), 413, "InputTooLargeError")
    assert_error(client.post("/v1/vision", data={"other": "x"}), 422, "InvalidRequest")
    assert_error(client.post("/v1/vision", json={"files": []}), 422, "InvalidRequest")
    files = [("files", ("d.png", image_bytes(), "image/png"))]
    assert_error(client.post("/v1/vision?top_k=0", files=files), 422, "InvalidRequest")


# ---- speech -----------------------------------------------------------------------------------
def test_speech_batch_matches_the_service_and_keeps_a_bad_clip_in_its_slot(client):
    payloads = [clip_bytes(), b"RIFF....not really audio", b""]
    files = [("files", (f"c{i}.wav", data, "audio/wav")) for i, data in enumerate(payloads)]
    response = client.post("/v1/speech", files=files)
    assert response.status_code == 200, response.text[:500]
    results = without_file(response.json()["results"])
    assert comparable(results) == comparable(service("speech").predict_batch(payloads))
    assert "error" not in results[0] and results[0]["label"]
    for bad in results[1:]:
        assert set(bad) == {"error"} and bad["error"]["message"]


def test_speech_explain_matches_the_service(client):
    data = clip_bytes()
    response = client.post("/v1/speech?explain=true", files=[("files", ("c.wav", data, "audio/wav"))])
    assert response.status_code == 200, response.text[:500]
    (result,) = without_file(response.json()["results"])
    assert comparable(result) == comparable(service("speech").predict(data, explain=True))


# ---- language ---------------------------------------------------------------------------------
def test_sentiment_batch_matches_the_service_and_keeps_a_bad_text_in_its_slot(client):
    texts = ["A wonderful, moving film.", "   ", "Dull and far too long."]
    response = client.post("/v1/sentiment", json={"texts": texts})
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert comparable(results) == comparable(service("nlp").predict_batch(texts))
    assert results[1]["error"]["type"] == "EmptyInputError"
    assert results[0]["label"] != results[2]["label"]


def test_sentiment_explain_matches_the_service(client):
    text = "The acting was superb but the plot was thin."
    response = client.post("/v1/sentiment", json={"texts": [text], "explain": True})
    assert response.status_code == 200, response.text[:500]
    (result,) = response.json()["results"]
    assert comparable(result) == comparable(service("nlp").predict(text, explain=True))


def test_sentiment_limits(client):
    many = ["fine"] * (limits.TEXT.max_explained + 1)
    assert_error(
        client.post("/v1/sentiment", json={"texts": many, "explain": True}), 413, "InputTooLargeError"
    )
    limit = service("nlp").max_batch
    assert_error(
        client.post("/v1/sentiment", json={"texts": ["ok"] * (limit + 1)}), 413, "InputTooLargeError"
    )


def test_similarity_and_summary_match_the_service(client):
    a, b = "The cat sat on the mat.", "A kitten was sitting on the rug."
    response = client.post("/v1/similarity", json={"a": a, "b": b})
    assert response.status_code == 200, response.text[:500]
    assert comparable(response.json()) == comparable(service("nlp").similarity(a, b))
    article = " ".join(f"Sentence number {i} talks about topic {i % 3} in some detail." for i in range(12))
    response = client.post("/v1/summary", json={"text": article, "sentences": 2})
    assert response.status_code == 200, response.text[:500]
    assert comparable(response.json()) == comparable(service("nlp").summarize(article, n_sentences=2))


def test_language_bad_input_is_a_4xx_with_the_services_message(client):
    # what the schema can say (a non-empty text) is checked from the schema ...
    assert_error(client.post("/v1/similarity", json={"a": "", "b": "something"}), 422, "InvalidRequest")
    # ... what it cannot (words to read) by the service, whose message arrives unchanged
    with pytest.raises(InputError) as refused:
        service("nlp").similarity("   ", "something")
    error = assert_error(client.post("/v1/similarity", json={"a": "   ", "b": "something"}), 422)
    assert error == {"type": type(refused.value).__name__, "message": str(refused.value)}
    assert_error(client.post("/v1/summary", json={"text": "x", "sentences": "three"}), 422, "InvalidRequest")
    assert_error(client.post("/v1/sentiment", json={"texts": "not a list"}), 422, "InvalidRequest")
    assert_error(client.post("/v1/sentiment", json={"texts": ["a"], "colour": "red"}), 422, "InvalidRequest")


# ---- recommendations --------------------------------------------------------------------------
RATINGS = {"50": 5, "172": 5, "181": 4.5, "1": 3}


def test_recommend_for_ratings_and_for_a_user_match_the_service(client):
    for body in ({"ratings": RATINGS, "k": 5}, {"user": 42, "k": 3, "genre": "Comedy"}):
        response = client.post("/v1/recommend", json=body)
        assert response.status_code == 200, response.text[:500]
        result = response.json()
        expected = service("recommend").predict({"genre": None, **body})
        assert comparable(result) == comparable(expected)
        assert len(result["recommendations"]) == body["k"]


def test_recommend_batch_matches_the_service(client):
    requests = [{"ratings": RATINGS, "k": 3}, {"user": 7, "k": 4}]
    response = client.post("/v1/recommend/batch", json={"requests": requests})
    assert response.status_code == 200, response.text[:500]
    expected = service("recommend").predict_batch([{"genre": None, **r} for r in requests])
    assert comparable(response.json()["results"]) == comparable(expected)


def test_recommend_unknown_ids_are_404(client):
    assert_error(client.post("/v1/recommend", json={"user": 99_999, "k": 3}), 404, "UnknownIdError")
    assert_error(client.get("/v1/recommend/similar/99999"), 404, "UnknownIdError")
    assert_error(client.get("/v1/recommend/users/99999/profile"), 404, "UnknownIdError")
    batch = client.post("/v1/recommend/batch", json={"requests": [{"user": 99_999}, {"user": 3, "k": 2}]})
    assert batch.status_code == 200
    unknown, known = batch.json()["results"]
    assert unknown["error"]["type"] == "UnknownIdError" and len(known["recommendations"]) == 2


def test_recommend_invalid_bodies_are_422(client):
    for body in ({"k": 3}, {"user": 1, "ratings": RATINGS}, {"user": "one"}, {"ratings": {"50": "great"}}):
        assert_error(client.post("/v1/recommend", json=body), 422, "InvalidRequest")
    # the same limit the service enforces (services/limits.py), stated in the schema
    with pytest.raises(InputError):
        service("recommend").predict({"ratings": RATINGS, "k": 0, "genre": None})
    error = assert_error(
        client.post("/v1/recommend", json={"ratings": RATINGS, "k": 0}), 422, "InvalidRequest"
    )
    assert "k: Input should be greater than or equal to 1" in error["message"]
    batch = {"requests": [{"ratings": RATINGS, "k": 0}]}
    assert_error(client.post("/v1/recommend/batch", json=batch), 422, "InvalidRequest")


def test_similar_search_map_and_catalogue_match_the_service(client):
    recommender = service("recommend")
    similar = client.get("/v1/recommend/similar/50", params={"k": 4})
    assert similar.status_code == 200, similar.text[:500]
    assert comparable(similar.json()) == comparable(recommender.similar_items(50, k=4))
    found = client.get("/v1/recommend/search", params={"q": "star wars", "limit": 5})
    assert found.status_code == 200, found.text[:500]
    assert comparable(found.json()) == comparable(recommender.search("star wars", limit=5))
    assert client.get("/v1/recommend/map").json()["results"] == comparable(recommender.item_map())
    assert client.get("/v1/recommend/catalogue").json()["results"] == comparable(recommender.catalogue())


def test_user_profile_matches_the_service(client):
    response = client.get("/v1/recommend/users/42/profile")
    try:
        expected = service("recommend").user_profile(42)
    except InputError as err:  # no MovieLens files on this machine: the same refusal over HTTP
        error = assert_error(response, api.input_error_status(err))
        assert error["message"] == str(err)
    else:
        assert response.status_code == 200
        assert comparable(response.json()) == comparable(expected)


def test_a_profile_on_a_server_without_the_rating_files_is_a_404(client, monkeypatch):
    # a schema-valid request for a resource this server does not hold: not the caller's mistake (no 422)
    monkeypatch.setattr(service("recommend"), "_history", None)
    error = assert_error(client.get("/v1/recommend/users/42/profile"), 404, "NotOnThisMachineError")
    assert "may not be redistributed" in error["message"]


# ---- limits on the body -----------------------------------------------------------------------
def test_body_limits_come_from_the_services_constants():
    from services import nlp, recommend, speech, vision

    assert vision.MAX_UPLOAD_BYTES < api.body_limit("/v1/vision") < 2 * vision.MAX_UPLOAD_BYTES
    assert speech.MAX_UPLOAD_BYTES < api.body_limit("/v1/speech") < 2 * speech.MAX_UPLOAD_BYTES
    assert nlp.MAX_CHARS < api.body_limit("/v1/summary")
    assert recommend.MAX_RATINGS < api.body_limit("/v1/recommend")
    assert api.body_limit("/health") == api.DEFAULT_BODY_LIMIT


def test_declared_oversized_body_is_refused_before_it_is_read():
    """The middleware answers 413 from the Content-Length alone: `receive` is never called."""
    limit = api.body_limit("/v1/vision")
    sent: list[dict] = []

    async def receive():
        raise AssertionError("the body was read")

    async def send(message):
        sent.append(message)

    async def never_called(scope, receive, send):
        raise AssertionError("the request reached the app")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/vision",
        "headers": [(b"content-length", str(limit + 1).encode())],
    }
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    # In a thread of its own: after the browser tests, this thread already runs Playwright's event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, api.BodyLimitMiddleware(never_called)(scope, receive, send)).result()
    assert sent[0]["status"] == 413
    error = json.loads(sent[1]["body"])["error"]
    assert error["type"] == "InputTooLargeError" and f"{limit:,}" in error["message"]


def test_oversized_bodies_get_413_with_or_without_a_length(client):
    limit = api.body_limit("/v1/summary")
    body = b'{"text": "' + b"a" * limit + b'"}'
    assert_error(
        client.post("/v1/summary", content=body, headers={"content-type": "application/json"}),
        413,
        "InputTooLargeError",
    )

    def chunks():  # no Content-Length: counted while streaming and cut off at the limit
        yield b'{"text": "'
        for _ in range(limit // 65_536 + 2):
            yield b"a" * 65_536

    assert_error(
        client.post("/v1/summary", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "InputTooLargeError",
    )
    big_image = b"\x89PNG" + b"\0" * api.body_limit("/v1/vision")
    assert_error(
        client.post("/v1/vision", files=[("files", ("big.png", big_image))]), 413, "InputTooLargeError"
    )


# ---- protocol errors and bugs -----------------------------------------------------------------
def test_invalid_json_unknown_route_and_wrong_method(client):
    error = assert_error(
        client.post("/v1/similarity", content=b'{"a": ', headers={"content-type": "application/json"}), 422
    )
    assert "not valid JSON" in error["message"]
    assert_error(client.get("/v2/anything"), 404, "NotFound")
    assert_error(client.get("/v1/sentiment"), 405, "MethodNotAllowed")
    assert_error(client.get("/v1/recommend/similar/abc"), 422, "InvalidRequest")


def test_an_unexpected_failure_is_a_500_without_a_traceback(client, monkeypatch):
    def broken(task):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(api.registry, "load", broken)
    response = client.post("/v1/similarity", json={"a": "x", "b": "y"})
    error = assert_error(response, 500, "InternalError")
    assert "secret" not in response.text and "RuntimeError" not in error["message"]


BAD_REQUESTS = [
    ("POST", "/v1/vision", {"files": [("files", ("x", b"\0" * 100))]}),
    ("POST", "/v1/vision", {"files": [("files", ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 50))]}),
    (
        "POST",
        "/v1/vision",
        {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data; boundary=x"}},
    ),
    ("POST", "/v1/vision/array", {"content": npy(np.zeros((1, 1), dtype=np.uint8))}),
    ("POST", "/v1/vision/array", {"content": npy(np.full((9, 9), np.nan))}),
    ("POST", "/v1/speech", {"files": [("files", ("x.mp3", b"ID3" + b"\0" * 200))]}),
    ("POST", "/v1/speech", {"files": [("files", ("x.wav", b"RIFF\xff\xff\xff\xffWAVEfmt "))]}),
    ("POST", "/v1/sentiment", {"json": {"texts": ["\x00\x01\x02" * 50, "x" * 30_000, ""]}}),
    ("POST", "/v1/sentiment", {"json": {"texts": [None]}}),
    ("POST", "/v1/sentiment", {"json": []}),
    ("POST", "/v1/similarity", {"json": {"a": "x" * 30_000, "b": "y"}}),
    ("POST", "/v1/summary", {"json": {"text": "One sentence.", "sentences": -5}}),
    ("POST", "/v1/summary", {"json": {"text": "One sentence.", "sentences": 10**12}}),
    ("POST", "/v1/recommend", {"json": {"ratings": {"50": 99}}}),
    ("POST", "/v1/recommend", {"json": {"ratings": {"abc": 4}}}),
    ("POST", "/v1/recommend", {"json": {"ratings": {}}}),
    ("POST", "/v1/recommend", {"json": {"ratings": {"50": 5}, "k": 10**9}}),
    ("POST", "/v1/recommend", {"json": {"ratings": {"50": 5}, "genre": "Opera"}}),
    ("POST", "/v1/recommend", {"json": {"user": -1}}),
    ("POST", "/v1/recommend/batch", {"json": {"requests": "x"}}),
    ("GET", "/v1/recommend/similar/0", {}),
    ("GET", "/v1/recommend/similar/50?k=-1", {}),
    ("GET", "/v1/recommend/search?q=", {}),
    ("GET", "/v1/recommend/search?q=" + "x" * 500, {}),
    ("GET", "/v1/recommend/users/0/profile", {}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), BAD_REQUESTS, ids=[f"{m} {p[:40]}" for m, p, _ in BAD_REQUESTS]
)
def test_bad_input_never_gets_a_500(client, method, path, kwargs):
    response = client.request(method, path, **kwargs)
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    body = response.json()
    if response.status_code >= 400:
        assert set(body["error"]) == {"type", "message"}
    else:  # a batch answers 200 with the bad items' errors in their slots, or the service copes
        assert isinstance(body, dict)


# ---- startup and the documented examples ------------------------------------------------------
def test_preload_starts_background_loading_and_health_reports_it(monkeypatch):
    started = []
    monkeypatch.setenv(api.PRELOAD_ENV, "1")
    monkeypatch.setattr(api.preload, "start_background_loading", lambda: started.append(True))
    monkeypatch.setattr(api.preload, "status", lambda task: {"state": "loading", "since": 1.0})
    with TestClient(api.create_app()) as fresh:
        assert started == [True]
        body = fresh.get("/health").json()
    assert body["preloading"] is True
    assert all(state["state"] == "loading" for state in body["models"].values())


def test_no_preload_by_default(monkeypatch):
    started = []
    monkeypatch.delenv(api.PRELOAD_ENV, raising=False)
    monkeypatch.setattr(api.preload, "start_background_loading", lambda: started.append(True))
    with TestClient(api.create_app()) as fresh:
        assert fresh.get("/health").status_code == 200
    assert started == []


def test_every_example_on_the_api_page_answers(client):
    examples = api_examples()
    assert {example.path for example in examples} >= {"/v1/vision", "/v1/speech", "/v1/recommend"}
    for example in examples:
        response = example.send(client)
        if example.path.endswith("/profile") and response.status_code == 404:
            continue  # needs the MovieLens files on the server; test_user_profile_matches_the_service
        assert response.status_code == 200, (example.path, response.text[:300])


# ---- the optional API key (serve/auth.py) ------------------------------------------------------
def test_with_api_key_set_v1_needs_the_key_and_health_stays_open(client, monkeypatch, caplog):
    key = "test-key-1f3a9c"
    monkeypatch.setenv("API_KEY", key)
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": key}):
        response = client.get("/v1/models/vision", headers=headers)
        assert_error(response, 401, "Unauthorized")
        assert key not in response.text
    ok = client.post("/v1/sentiment", json={"texts": ["fine"]}, headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200, ok.text[:300]
    assert client.get("/v1/models/vision", headers={"X-API-Key": key}).status_code == 200
    assert key not in caplog.text
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}


def test_without_api_key_nothing_is_asked_and_the_schema_names_no_scheme(client, monkeypatch):
    monkeypatch.delenv("API_KEY", raising=False)
    assert client.get("/v1/models/vision").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})
