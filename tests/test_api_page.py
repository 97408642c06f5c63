"""AppTest for the API page: base URL, a curl command per route, and "try it" against the API."""

from __future__ import annotations

import socket
from pathlib import Path
from unittest import mock

from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

from pages.ui.launch import API_MOUNT_ENV
from serve import api
from services.client import API_URL_ENV
from services.http_client import DEFAULT_API_URL, api_examples

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_page(monkeypatch, url: str | None) -> AppTest:
    if url is None:
        monkeypatch.delenv(API_URL_ENV, raising=False)
    else:
        monkeypatch.setenv(API_URL_ENV, url)
    # started as the app does (app.py is the main script), so the sidebar's page links resolve
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/6_API.py").run()
    assert not at.exception
    return at


def curl_blocks(at: AppTest) -> list[str]:
    return [block.value for block in at.code if block.value.startswith(("curl", "python -c"))]


def test_without_an_api_the_page_shows_every_curl_command_and_try_it_stays_enabled(monkeypatch):
    monkeypatch.delenv(API_MOUNT_ENV, raising=False)
    at = run_page(monkeypatch, None)
    commands = curl_blocks(at)
    examples = api_examples()
    assert len(commands) == len(examples) + 1  # one per route, plus the chosen one under "Try it"
    for example, command in zip(examples, commands, strict=False):
        assert f"{DEFAULT_API_URL}{example.path}" in command
    assert any("-F files=@" in command for command in commands)
    assert not at.button(key="api_try").disabled  # issue 32: it was greyed out by default
    assert "make api" in at.info[0].value


def test_started_by_the_launcher_the_api_is_on_the_apps_own_port(monkeypatch):
    """`make run` mounts the API under /api on the app's port: links and Try it point there."""
    monkeypatch.setenv(API_MOUNT_ENV, "/api")
    at = run_page(monkeypatch, None)
    assert "/api" in at.success[0].value and ":8000" not in at.success[0].value, at.success[0].value
    links = [block.value for block in at.markdown if "/docs" in block.value]
    assert links and "/api/docs" in links[0] and ":8000" not in links[0], links
    assert not at.button(key="api_try").disabled


def test_try_it_calls_the_configured_api_and_shows_the_answer(monkeypatch):
    # the page opens its own client; hand it the API in this process instead of a socket
    with mock.patch("services.http_client.open_client", side_effect=lambda url: TestClient(api.app)):
        at = run_page(monkeypatch, "http://testserver")
        assert "http://testserver" in at.success[0].value
        titles = [example.path for example in api_examples()]
        at.selectbox(key="api_route").set_value(titles.index("/v1/recommend/search")).run()
        at.button(key="api_try").click().run()
    assert not at.exception
    assert any(s.value.startswith("HTTP 200") for s in at.success), [s.value for s in at.success]
    answer = at.code[-1].value
    assert "Star" in answer  # the example searches the catalogue for "star"


def test_try_it_with_nothing_listening_says_so(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    at = run_page(monkeypatch, f"http://127.0.0.1:{port}")
    at.button(key="api_try").click().run()
    assert not at.exception
    assert "did not answer" in at.error[0].value
