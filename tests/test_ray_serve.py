"""The REST API on Ray Serve (serve/ray_app.py): same routes and errors, two nodes, a killed replica.

The cluster runs with API_KEY set (as `API_KEY=... make serve` would), so every request here carries
the key, and the key's own tests check 401 without it; schemathesis runs every check against it.

One Ray cluster of two simulated nodes (`ray.cluster_utils.Cluster`, one logical CPU each) serves the
whole module, so the models load once: vision and recommend run two replicas, at most one per node,
so they must land on both nodes; speech and nlp run one. All traffic goes to 127.0.0.1. The cluster
is shut down after the module even when a test fails.

Without ray installed the module is skipped, unless E2E_REQUIRED=1 (CI), where that is a failure.
"""

from __future__ import annotations

import concurrent.futures
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.test_api import assert_error, clip_bytes, comparable, image_bytes, without_file

if os.environ.get("E2E_REQUIRED") == "1":
    import ray  # noqa: F401 - in CI a missing ray is a failure, not a skip
else:
    pytest.importorskip("ray", reason="ray[serve] is not installed (pip install -r requirements-serve.txt)")

import ray  # noqa: E402
from ray import serve  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from serve import ray_app  # noqa: E402
from services import registry  # noqa: E402
from services.errors import UnknownIdError  # noqa: E402
from services.http_client import remote_service  # noqa: E402

pytestmark = pytest.mark.slow

API_KEY = secrets.token_urlsafe(24)
DEPLOY_TIMEOUT_S = 600  # four models load in parallel on two shared cores
SPREAD = {"num_replicas": 2, "max_replicas_per_node": 1, "autoscaling_config": None}
# Small logical CPU shares: seven replicas and the ingress fit two one-CPU nodes.
TEST_OPTIONS = {
    "api": {"ray_actor_options": {"num_cpus": 0.1}},
    "vision": SPREAD | {"ray_actor_options": {"num_cpus": 0.1}},
    "recommend": SPREAD | {"ray_actor_options": {"num_cpus": 0.1}},
    "speech": {"num_replicas": 1, "autoscaling_config": None, "ray_actor_options": {"num_cpus": 0.1}},
    "nlp": {"num_replicas": 1, "autoscaling_config": None, "ray_actor_options": {"num_cpus": 0.1}},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    saved_env = {name: os.environ.get(name) for name in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED", "API_KEY")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["API_KEY"] = API_KEY  # the nodes' processes inherit it, so the ingress requires it
    # the replicas (started by the simulated nodes) import serve/ and services/ from this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ray_app.REPO_ROOT), saved_env["PYTHONPATH"]])
    )
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        nodes.add_node(num_cpus=1)
        ray.init(address=nodes.address, log_to_driver=False)
        nodes.wait_for_nodes()
        yield nodes
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            nodes.shutdown()
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture(scope="module")
def base_url(cluster):
    port = _free_port()
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    options = {name: ray_app.deployment_options()[name] | TEST_OPTIONS[name] for name in TEST_OPTIONS}
    started = time.perf_counter()
    serve.run(
        ray_app.build_application(options),
        name=ray_app.APP_NAME,
        route_prefix="/",
    )
    print(f"\nRay Serve app healthy after {time.perf_counter() - started:.0f} s")
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        yield http


def replicas(client: httpx.Client, task: str) -> list[dict]:
    stats = client.get("/v1/stats")
    assert stats.status_code == 200, stats.text[:500]
    return stats.json()["tasks"][task]["replicas"]


# ---- the same routes and error shapes as the in-process API ------------------------------------
def test_health_says_every_model_is_served_by_ray(client):
    body = client.get("/health").json()
    assert set(body["models"]) == set(registry.TASK_MODULES)
    assert all(
        state == {"state": "ready", "served_by": "ray-serve", "replica": state["replica"]}
        for state in body["models"].values()
    ), body


def test_openapi_lists_the_api_routes_and_the_stats_route(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {"/health", "/v1/vision", "/v1/speech", "/v1/sentiment", "/v1/recommend", "/v1/stats"} <= paths


def test_with_api_key_set_v1_needs_the_key_and_health_stays_open(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as anonymous:
        assert anonymous.get("/health").status_code == 200
        missing = anonymous.get("/v1/models/vision")
        assert_error(missing, 401, "Unauthorized")
        assert API_KEY not in missing.text
        wrong = anonymous.get("/v1/models/vision", headers={"Authorization": "Bearer not-the-key"})
        assert_error(wrong, 401, "Unauthorized")
        assert anonymous.get("/v1/models/vision", headers={"X-API-Key": API_KEY}).status_code == 200
        bearer = anonymous.post(
            "/v1/sentiment", json={"texts": ["fine"]}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert bearer.status_code == 200, bearer.text[:300]


def test_schemathesis_finds_no_failure_on_ray_serve(base_url):
    """`schemathesis run --checks all` against the Ray Serve app, as against `make api`."""
    pytest.importorskip("schemathesis", reason="schemathesis is not installed (requirements-dev.txt)")
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "15",
        "--no-color",
        "-H",
        f"Authorization: Bearer {API_KEY}",
    ]
    done = subprocess.run(
        command, cwd=ray_app.REPO_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    summary = done.stdout[done.stdout.find("SUMMARY") :]
    print("\n" + summary)
    assert done.returncode == 0, done.stdout[-4000:]


def test_vision_batch_matches_the_in_process_service_with_a_bad_file_in_its_slot(client):
    files = [("files", ("three.png", image_bytes())), ("files", ("notes.txt", b"not an image"))]
    response = client.post("/v1/vision", files=files, params={"top_k": 2})
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert [r["file"] for r in results] == ["three.png", "notes.txt"]
    expected = registry.load("vision").predict_batch([image_bytes(), b"not an image"], top_k=2)
    assert comparable(without_file(results)) == comparable(expected)
    assert results[1]["error"]["type"] == "UnsupportedFormatError"


def test_speech_sentiment_and_recommend_answer_with_errors_in_their_slots(client):
    speech = client.post("/v1/speech", files=[("files", ("a.wav", clip_bytes())), ("files", ("b.wav", b""))])
    assert speech.status_code == 200, speech.text[:500]
    clip, empty = speech.json()["results"]
    assert clip["label"] and "error" in empty
    sentiment = client.post("/v1/sentiment", json={"texts": ["a wonderful, moving film", "   "]})
    assert sentiment.status_code == 200
    good, blank = sentiment.json()["results"]
    assert good["label"] == "positive" and blank["error"]["type"] == "EmptyInputError"
    batch = client.post("/v1/recommend/batch", json={"requests": [{"user": 99_999}, {"user": 3, "k": 2}]})
    unknown, known = batch.json()["results"]
    assert unknown["error"]["type"] == "UnknownIdError" and len(known["recommendations"]) == 2


def test_bad_requests_get_the_same_4xx_shapes(client):
    assert_error(client.post("/v1/recommend", json={"user": 99_999, "k": 3}), 404, "UnknownIdError")
    assert_error(client.get("/v1/recommend/similar/99999"), 404, "UnknownIdError")
    assert_error(client.get("/v1/models/weather"), 404, "UnknownIdError")
    assert_error(client.post("/v1/recommend", json={"k": 3}), 422, "InvalidRequest")
    assert_error(
        client.post("/v1/sentiment", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert_error(client.get("/v1/no-such-route"), 404, "NotFound")
    too_large = ray_app.api.body_limit("/v1/summary") + 1
    assert_error(client.post("/v1/summary", json={"text": "x" * too_large}), 413, "InputTooLargeError")


@pytest.mark.parametrize("task", sorted(registry.TASK_MODULES))
def test_model_facts_and_self_test_per_task(client, task):
    info = client.get(f"/v1/models/{task}")
    assert info.status_code == 200, info.text[:500]
    assert isinstance(info.json(), dict) and info.json()
    if task == "vision":  # loaded in this process by another test anyway; the others stay on Ray only
        assert comparable(info.json()) == comparable(registry.load("vision").info())
    answer = client.get(f"/v1/models/{task}/self-test")
    assert answer.status_code == 200, answer.text[:500]
    assert {"input", "output", "latency_ms"} <= set(answer.json())


def test_the_pages_http_client_works_against_ray_serve(base_url):
    """DEMO_BACKEND=http DEMO_API_URL=<Ray Serve>: the pages' client gets the services' answers."""
    vision = remote_service("vision", base_url)
    assert (
        vision.predict(image_bytes(), top_k=2)["label"]
        == registry.load("vision").predict(image_bytes())["label"]
    )
    assert 0 <= remote_service("nlp", base_url).similarity("a good film", "a great movie")["similarity"] <= 1
    recommend = remote_service("recommend", base_url)
    assert len(recommend.similar_items(50, k=3)["top_k"]) == 3
    with pytest.raises(UnknownIdError):
        recommend.predict({"user": 99_999, "k": 3, "genre": None})


def test_concurrent_requests_are_merged_into_larger_batches(client):
    before = client.get("/v1/stats").json()["tasks"]["nlp"]
    texts = [f"review number {i}: a film I {'loved' if i % 2 else 'hated'}" for i in range(32)]

    def one(text: str) -> int:
        return client.post("/v1/sentiment", json={"texts": [text]}).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, texts)) == {200}
    after = client.get("/v1/stats").json()["tasks"]["nlp"]
    assert after["items"] - before["items"] == len(texts)
    new_forwards = after["forwards"] - before["forwards"]
    print(
        f"\n32 concurrent one-text requests -> {new_forwards} forward passes; sizes {after['forward_sizes']}"
    )
    assert new_forwards < len(texts)  # at least one forward served several requests


# ---- multi-node ---------------------------------------------------------------------------------
def test_replicas_land_on_both_nodes_and_answer(cluster, client):
    node_ids = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(node_ids) == 2
    for task in ("vision", "recommend"):
        assert {r["node_id"] for r in replicas(client, task)} == node_ids, task
    before = {r["replica"]: sum(r["forward_sizes"].values()) for r in replicas(client, "vision")}
    answered: set[str] = set()
    for _ in range(20):  # requests go to either replica; a few rounds reach both
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        client.post("/v1/vision", files=[("files", ("d.png", image_bytes()))]).status_code
                    ),
                    range(4),
                )
            )
        assert codes == [200] * 4
        answered = {
            r["replica"]
            for r in replicas(client, "vision")
            if sum(r["forward_sizes"].values()) > before.get(r["replica"], 0)
        }
        if len(answered) == 2:
            break
    print(
        f"\nvision replicas on nodes {sorted(n[:8] for n in node_ids)}; replicas that answered: {len(answered)}"
    )
    assert len(answered) == 2


# ---- faults ---------------------------------------------------------------------------------------
def test_a_killed_replica_is_replaced_and_every_request_succeeds_with_one_retry(client):
    victims = replicas(client, "vision")
    assert len(victims) == 2
    victim = victims[0]
    actor_name = next(
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].endswith(f"#vision#{victim['replica']}")
    )
    counts = {"sent": 0, "succeeded": 0, "retried": 0, "failed": 0}
    lock = threading.Lock()
    killed = threading.Event()

    def attempt() -> bool:
        try:
            response = client.post("/v1/vision", files=[("files", ("d.png", image_bytes()))])
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.json()["results"][0]["label"] == "3"

    def one(_: int) -> None:
        with lock:
            counts["sent"] += 1
        ok = attempt()
        if not ok:
            with lock:
                counts["retried"] += 1
            time.sleep(1.0)
            ok = attempt()
        with lock:
            counts["succeeded" if ok else "failed"] += 1
            done = counts["succeeded"] + counts["failed"]
        if done == 10 and not killed.is_set():
            killed.set()
            ray.kill(ray.get_actor(actor_name, namespace="serve"), no_restart=True)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(60)))
    assert killed.is_set()

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        current = {r["replica"] for r in replicas(client, "vision")}
        if len(current) == 2 and victim["replica"] not in current:
            break
        time.sleep(2)
    print(f"\nfault test: {counts}; replacement replicas: {sorted(current)} (killed {victim['replica']})")
    assert counts["failed"] == 0 and counts["succeeded"] == counts["sent"] == 60
    assert len(current) == 2 and victim["replica"] not in current
