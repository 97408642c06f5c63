"""The pages' HTTP backend (services/http_client.py) against the REST API: same methods, same results.

Each remote method is called beside the in-process one on the same input; the answers must match
except for timings, and bad input must raise the same InputError class with the same message.
The API runs in FastAPI's TestClient here; tests/test_api_uvicorn.py repeats a call over a socket.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from serve import api
from services import client as backend_client
from services import errors, registry
from services.http_client import (
    ApiError,
    ApiUnavailableError,
    RemoteNlp,
    RemoteRecommend,
    RemoteSpeech,
    RemoteVision,
    remote_service,
)
from tests.test_api import RATINGS, clip_bytes, comparable, image_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def test_client():
    with TestClient(api.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def remote(test_client):
    return {task: remote_service(task, None, client=test_client) for task in registry.TASK_MODULES}


def local(task: str):
    return registry.load(task)


def same_error(local_call, remote_call) -> None:
    with pytest.raises(errors.InputError) as here:
        local_call()
    with pytest.raises(errors.InputError) as there:
        remote_call()
    assert type(there.value) is type(here.value)
    assert str(there.value) == str(here.value)


@pytest.mark.parametrize("task", sorted(registry.TASK_MODULES))
def test_info_and_self_test_match(remote, task):
    assert comparable(remote[task].info()) == comparable(local(task).info())
    here, there = local(task).self_test(), remote[task].self_test()
    assert set(there) == set(here)
    assert there["input"] == here["input"]


def test_vision_methods_match(remote):
    vision = remote["vision"]
    data = image_bytes()
    assert comparable(vision.predict(data, top_k=4, explain=True)) == comparable(
        local("vision").predict(data, top_k=4, explain=True)
    )
    batch = [data, b"not an image", image_bytes("mnist_test_0000.png")]
    assert comparable(vision.predict_batch(batch)) == comparable(local("vision").predict_batch(batch))
    rgba = np.asarray(
        Image.open(REPO_ROOT / "models" / "vision" / "examples" / "drawn_4.png").convert("RGBA")
    )
    assert comparable(vision.predict_array(rgba, explain=True)) == comparable(
        local("vision").predict_array(rgba, explain=True)
    )
    same_error(lambda: local("vision").predict(b"junk"), lambda: vision.predict(b"junk"))
    blank = np.zeros((3, 3, 4), dtype=np.uint8)
    same_error(lambda: local("vision").predict_array(blank), lambda: vision.predict_array(blank))


def test_speech_methods_match(remote):
    speech = remote["speech"]
    data = clip_bytes()
    assert comparable(speech.predict(data, top_k=5, explain=True)) == comparable(
        local("speech").predict(data, top_k=5, explain=True)
    )
    batch = [data, b"", b"not audio at all"]
    assert comparable(speech.predict_batch(batch)) == comparable(local("speech").predict_batch(batch))
    same_error(lambda: local("speech").predict(b""), lambda: speech.predict(b""))


def test_nlp_methods_match(remote):
    nlp = remote["nlp"]
    text = "An uneven but often delightful comedy."
    assert comparable(nlp.predict(text)) == comparable(local("nlp").predict(text))
    assert comparable(nlp.predict(text, explain=True)) == comparable(local("nlp").predict(text, explain=True))
    texts = ["Loved it.", "", "Hated it."]
    assert comparable(nlp.predict_batch(texts)) == comparable(local("nlp").predict_batch(texts))
    assert comparable(nlp.similarity("a red car", "a crimson automobile")) == comparable(
        local("nlp").similarity("a red car", "a crimson automobile")
    )
    article = " ".join(f"Point {i} is made here about subject {i % 4}." for i in range(10))
    assert comparable(nlp.summarize(article, n_sentences=2)) == comparable(
        local("nlp").summarize(article, n_sentences=2)
    )
    same_error(lambda: local("nlp").predict("   "), lambda: nlp.predict("   "))


def test_recommend_methods_match(remote):
    recommend, here = remote["recommend"], local("recommend")
    for request in (
        {"ratings": {50: 5, 172: 4.5}, "k": 4, "genre": None},
        {"user": 42, "k": 3, "genre": None},
    ):
        assert comparable(recommend.predict(request)) == comparable(here.predict(request))
    requests = [
        {"ratings": {int(k): v for k, v in RATINGS.items()}, "k": 3, "genre": None},
        {"user": 9, "k": 2},
    ]
    assert comparable(recommend.predict_batch(requests)) == comparable(here.predict_batch(requests))
    assert comparable(recommend.similar_items(50, k=3, genre="Sci-Fi")) == comparable(
        here.similar_items(50, k=3, genre="Sci-Fi")
    )
    assert comparable(recommend.search("godfather", limit=3)) == comparable(here.search("godfather", limit=3))
    assert comparable(recommend.item_map()) == comparable(here.item_map())
    assert comparable(recommend.catalogue()) == comparable(here.catalogue())
    try:
        profile = here.user_profile(42)
    except errors.InputError:
        same_error(lambda: here.user_profile(42), lambda: recommend.user_profile(42))
    else:
        assert comparable(recommend.user_profile(42)) == comparable(profile)
    same_error(lambda: here.user_profile(99_999), lambda: recommend.user_profile(99_999))


def test_unknown_ids_are_an_error_over_http_and_a_flagged_fallback_in_process(remote):
    """The one deliberate difference (serve/api.py): the pages only offer known ids, so they never see it."""
    recommend, here = remote["recommend"], local("recommend")
    assert here.predict({"user": 99_999, "k": 3})["low_confidence"] is True
    with pytest.raises(errors.UnknownIdError, match="no user 99999"):
        recommend.predict({"user": 99_999, "k": 3})
    assert here.similar_items(99_999)["low_confidence"] is True
    with pytest.raises(errors.UnknownIdError, match="no movie with id 99999"):
        recommend.similar_items(99_999)
    batch = recommend.predict_batch([{"user": 99_999, "k": 2}, {"user": 1, "k": 2}])
    assert batch[0]["error"]["type"] == "UnknownIdError"
    assert comparable(batch[1]) == comparable(here.predict({"user": 1, "k": 2}))


def test_numpy_values_in_a_request_are_sent_as_json(remote):
    request = {"ratings": {np.int64(50): np.float32(5.0)}, "k": np.int64(3)}
    assert len(remote["recommend"].predict(request)["recommendations"]) == 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_api_raises_a_clear_typed_error():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused at once
    vision = remote_service("vision", url)
    with pytest.raises(ApiUnavailableError, match="did not answer.*make api"):
        vision.predict(image_bytes())
    with pytest.raises(ApiUnavailableError, match="DEMO_API_URL"):
        remote_service("vision", None)
    with pytest.raises(KeyError):
        remote_service("weather", url)


def test_a_server_failure_is_an_api_error_not_an_input_error(test_client, monkeypatch):
    def broken(task):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.registry, "load", broken)
    with pytest.raises(ApiError, match="500"):
        remote_service("nlp", None, client=test_client).similarity("a", "b")


def test_get_service_picks_the_backend_from_the_environment(monkeypatch):
    monkeypatch.setenv(backend_client.BACKEND_ENV, "http")
    monkeypatch.setenv(backend_client.API_URL_ENV, "http://127.0.0.1:8000/")
    classes = {"vision": RemoteVision, "speech": RemoteSpeech, "nlp": RemoteNlp, "recommend": RemoteRecommend}
    for task, remote_class in classes.items():
        service = backend_client.get_service(task)
        assert isinstance(service, remote_class) and service.base_url == "http://127.0.0.1:8000"
    monkeypatch.setenv(backend_client.BACKEND_ENV, "inprocess")
    assert backend_client.get_service("recommend") is registry.load("recommend")


def test_remote_services_offer_the_in_process_public_methods():
    """Every public method a page may call on the in-process service exists on its remote twin."""
    for task, remote_class in {
        "vision": RemoteVision,
        "speech": RemoteSpeech,
        "nlp": RemoteNlp,
        "recommend": RemoteRecommend,
    }.items():
        contract = {
            "vision": {"predict", "predict_array", "predict_batch", "info", "self_test"},
            "speech": {"predict", "predict_batch", "info", "self_test"},
            "nlp": {"predict", "predict_batch", "similarity", "summarize", "info", "self_test"},
            "recommend": {
                "predict",
                "predict_batch",
                "similar_items",
                "user_profile",
                "search",
                "item_map",
                "catalogue",
                "info",
                "self_test",
            },
        }[task]
        assert contract <= {name for name in dir(remote_class) if not name.startswith("_")}, task
        local_methods = {name for name in dir(type(local(task))) if not name.startswith("_")}
        assert contract <= local_methods, (task, contract - local_methods)


def test_remote_status_reports_the_servers_model_states(test_client, monkeypatch):
    from services.http_client import remote_status

    monkeypatch.delenv(api.PRELOAD_ENV, raising=False)
    monkeypatch.setattr(api.preload, "status", lambda task: {"state": "waiting"})
    # lazy server: nothing will load until asked, so the pages may call (and so load) it now
    assert remote_status("vision", None, client=test_client) == {"state": "ready", "loads_on_first_use": True}
    monkeypatch.setattr(api.preload, "status", lambda task: {"state": "loading", "since": 3.0})
    assert remote_status("nlp", None, client=test_client)["state"] == "loading"
    url = f"http://127.0.0.1:{free_port()}"
    down = remote_status("nlp", url)
    assert down["state"] == "failed" and "did not answer" in down["error"]


def test_the_client_sends_the_api_key_when_one_is_set(monkeypatch):
    from services.http_client import open_client

    monkeypatch.setenv("API_KEY", "client-key")
    assert open_client("http://127.0.0.1:9").headers["Authorization"] == "Bearer client-key"
    monkeypatch.delenv("API_KEY")
    assert "Authorization" not in open_client("http://127.0.0.1:9").headers


def test_curl_examples_read_the_key_from_the_shell_and_never_print_it(monkeypatch):
    from services.http_client import api_examples

    monkeypatch.setenv("API_KEY", "never-printed-key")
    for example in api_examples():
        command = example.curl("http://127.0.0.1:8000")
        assert "never-printed-key" not in command
        assert 'Authorization: Bearer $API_KEY"' in command, command
