"""`make serve` and `make serve-stop` on a fresh machine: no ~/.ray, so no Ray auth token yet.

HOME points at an empty folder, so the Ray token, Ray's per-user files and the command's state are
all new; the head and the Serve app get free loopback ports so the test never meets another cluster.
After `make serve-stop` no process started with that HOME may be left.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("ray", reason="ray[serve] is not installed (pip install -r requirements-serve.txt)")

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE_TIMEOUT_S = 900  # four models load on two shared cores


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _processes_with_home(home: Path) -> list[str]:
    """Processes whose environment has HOME=home: everything `make serve` started, Ray's included."""
    marker = f"HOME={home}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
                found.append(f"{entry.name}: {command!r}")
        except OSError:  # gone meanwhile, or another user's
            continue
    return found


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find leftover processes")
def test_make_serve_starts_on_a_machine_without_a_ray_token_and_stops_cleanly(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    serve_port, head_port, dashboard_port, client_port, agent_port = _free_ports(5)
    api_key = secrets.token_urlsafe(24)  # `API_KEY=... make serve`: the deployed app must require it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {
        "API_KEY": api_key,
        "HOME": str(home),
        "SERVE_STATE_FILE": str(tmp_path / "serve-state.json"),
        "RAY_HEAD_PORT": str(head_port),
        "RAY_DASHBOARD_PORT": str(dashboard_port),
        "RAY_START_ARGS": f"--ray-client-server-port={client_port} --dashboard-agent-listen-port={agent_port}",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    make = ["make", "--no-print-directory", f"SERVE_PORT={serve_port}"]
    started = time.perf_counter()
    try:
        up = subprocess.run(
            [*make, "serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=SERVE_TIMEOUT_S
        )
        log = up.stdout + up.stderr
        assert up.returncode == 0, log[-3000:]
        print(f"\nmake serve healthy after {time.perf_counter() - started:.0f} s with HOME={home}")
        print("\n".join(line for line in log.splitlines() if line.startswith(("$ ray", "app ", "{"))))
        assert "no token yet" in log, "make serve should have created the cluster token"
        token = (home / ".ray" / "auth_token").read_text().strip()
        assert token and token not in log, "the token must be created and never printed"
        assert api_key not in log, "the API key must never be printed"

        with httpx.Client(base_url=f"http://127.0.0.1:{serve_port}", timeout=60) as client:
            health = client.get("/health")
            assert health.status_code == 200
            models = health.json()["models"]
            assert models and all(state["state"] == "ready" for state in models.values()), models
            search = {"q": "star wars", "limit": 3}
            refused = client.get("/v1/recommend/search", params=search)
            assert refused.status_code == 401 and refused.json()["error"]["type"] == "Unauthorized"
            found = client.get("/v1/recommend/search", params=search, headers={"X-API-Key": api_key})
            assert found.status_code == 200, found.text[:300]
            assert found.json()["matches"], found.json()
    finally:
        down = subprocess.run(
            [*make, "serve-stop"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
    assert down.returncode == 0, (down.stdout + down.stderr)[-3000:]
    deadline = time.monotonic() + 30  # `ray stop` sends SIGTERM and waits; children may lag a little
    while (left := _processes_with_home(home)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"processes left behind after make serve-stop: {left}"
