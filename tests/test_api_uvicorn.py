"""The REST API in a real uvicorn process on 127.0.0.1: what `make api` runs, over a real socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serve.api import body_limit
from services.http_client import remote_service
from tests.test_api import comparable, image_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 120  # imports torch and the services on a busy 2-core machine
REQUEST_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DEMO_DEVICE": "cpu"}
    env.pop("API_PRELOAD", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "serve.api:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{process.stdout.read()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not answer /health within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_uvicorn_serves_predictions_refuses_oversized_bodies_and_backs_the_http_client(server):
    with httpx.Client(base_url=server, timeout=REQUEST_TIMEOUT_S) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["models"]["vision"]["state"] == "waiting"

        answer = client.post("/v1/vision", files=[("files", ("three.png", image_bytes(), "image/png"))])
        assert answer.status_code == 200, answer.text[:500]
        (result,) = answer.json()["results"]
        assert result["file"] == "three.png" and result["label"] == "3"
        assert client.get("/health").json()["models"]["vision"]["state"] == "ready"

        bad = client.post("/v1/recommend", json={"ratings": {"50": 5}, "user": 1})
        assert bad.status_code == 422 and bad.json()["error"]["type"] == "InvalidRequest"

    # A client that announces a body over the limit and waits for "100 Continue" gets the 413
    # without ever sending it: the server refused from the Content-Length alone.
    limit = body_limit("/v1/vision")
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /v1/vision HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {limit * 10}\r\nExpect: 100-continue\r\n\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"100 Continue" not in head
    assert json.loads(body)["error"]["type"] == "InputTooLargeError"

    from services.vision import load_service

    data = image_bytes("mnist_test_0000.png")
    remote = remote_service("vision", server)
    assert comparable(remote.predict(data, explain=True)) == comparable(
        load_service().predict(data, explain=True)
    )


def test_pages_render_on_the_http_backend(server, monkeypatch):
    """With DEMO_BACKEND=http every page gets its service from the API and renders unchanged."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DEMO_BACKEND", "http")
    monkeypatch.setenv("DEMO_API_URL", server)
    st.cache_resource.clear()  # services cached by earlier in-process page tests must not be reused
    try:
        for page in ("1_Vision.py", "2_Language.py", "3_Speech.py", "4_Recommendation.py", "6_API.py"):
            at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
            at.switch_page(f"pages/{page}").run()
            assert not at.exception, (page, [e.value for e in at.exception])
            assert not at.error, (page, [e.value for e in at.error])
    finally:
        st.cache_resource.clear()
    # the Speech page shows the model's facts at once: they came from the server, which loaded it
    assert httpx.get(f"{server}/health", timeout=10).json()["models"]["speech"]["state"] == "ready"
