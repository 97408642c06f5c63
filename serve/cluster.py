"""`make serve` / `make serve-stop`: a local Ray head (unless RAY_ADDRESS names a cluster) and the app on it.

    python -m serve.cluster up --port 8000    # ray start --head if needed, serve deploy, wait until healthy
    python -m serve.cluster down              # serve shutdown; ray stop if `up` started the cluster

Ray 2.59+ starts local clusters with token authentication. A fresh machine has no token yet
(`~/.ray/auth_token`), and `ray start --head` refuses to start without one, so `up` creates it first
with Ray's own `ray get-auth-token --generate`. Worker machines join with the same token (README).

This module drives Ray through its command-line tools and imports no ray itself, so it starts fast and
works against a cluster of another Ray build; the deployments live in serve/ray_app.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_PATH = Path(__file__).with_name("config.yaml")
APP_NAME = "demo"  # the application name in serve/config.yaml

STATE_FILE = Path(os.environ.get("SERVE_STATE_FILE", REPO_ROOT / ".venv" / "serve-state.json"))
# The local head's ports; the defaults are Ray's, which the README's worker-join command uses.
HEAD_PORT = int(os.environ.get("RAY_HEAD_PORT", "6379"))
DASHBOARD_PORT = int(os.environ.get("RAY_DASHBOARD_PORT", "8265"))
# More `ray start --head` flags, e.g. other ports so that two clusters can share a machine (tests).
EXTRA_START_ARGS = os.environ.get("RAY_START_ARGS", "").split()


def _head_host() -> str:
    """The head node's host: from RAY_ADDRESS (`host:6379` or `http://host:8265`), else this machine."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address or address in ("auto", "local"):
        return "127.0.0.1"
    return address.split("://")[-1].split("/")[0].rsplit(":", 1)[0]


# `serve deploy` and `serve status` talk to the dashboard's REST API on the head node
DASHBOARD_ADDRESS = os.environ.get("RAY_DASHBOARD_ADDRESS", f"http://{_head_host()}:{DASHBOARD_PORT}")


def _cli(name: str) -> str:
    # the venv's own `ray` and `serve` scripts, whether or not the venv is activated
    beside_python = Path(sys.executable).with_name(name)
    return str(beside_python) if beside_python.exists() else (shutil.which(name) or name)


def _local_cluster() -> bool:
    return not os.environ.get("RAY_ADDRESS")


def _cli_env() -> dict[str, str]:
    """Ray's CLIs only send the token when RAY_AUTH_MODE=token. A cluster named by RAY_ADDRESS brings
    its own settings."""
    if not _local_cluster():
        return dict(os.environ)
    return {"RAY_AUTH_MODE": "token"} | dict(os.environ)


def _run(command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=check, text=True, cwd=REPO_ROOT, env=_cli_env())


def token_file() -> Path:
    """Where Ray reads the local token from unless RAY_AUTH_TOKEN(_PATH) says otherwise."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def ensure_auth_token() -> bool:
    """Create the local cluster's token when token auth is on and none exists; True if one was made.

    `ray get-auth-token --generate` writes ~/.ray/auth_token and prints the token: the output is
    captured and dropped, so the secret never reaches the terminal or a log.
    """
    env = _cli_env()
    if env.get("RAY_AUTH_MODE", "").lower() != "token" or env.get("RAY_AUTH_TOKEN"):
        return False
    if token_file().is_file() and token_file().stat().st_size > 0:
        return False
    print(f"$ ray get-auth-token --generate   (no token yet: writing {token_file()})", flush=True)
    made = subprocess.run(
        [_cli("ray"), "get-auth-token", "--generate"], capture_output=True, text=True, cwd=REPO_ROOT, env=env
    )
    if made.returncode != 0 or not token_file().is_file():
        raise SystemExit(f"could not create the Ray auth token: {made.stderr.strip()[-500:]}")
    return True


def _deploy_config(port: int, host: str) -> Path:
    """serve/config.yaml with the HTTP port and the checkout on every worker's import path."""
    config = yaml.safe_load(CONFIG_PATH.read_text())
    config.setdefault("http_options", {}).update({"port": port, "host": host})
    for application in config["applications"]:
        runtime_env = application.setdefault("runtime_env", {})
        env_vars = runtime_env.setdefault("env_vars", {})
        env_vars.setdefault("PYTHONPATH", str(REPO_ROOT))
        # the replicas and the ingress read the API key from their own environment
        if os.environ.get("API_KEY"):
            env_vars.setdefault("API_KEY", os.environ["API_KEY"])
    handle, path = tempfile.mkstemp(prefix="serve-config-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)
    os.chmod(path, 0o600)  # it may hold the API key
    return Path(path)


def _serve_status() -> dict[str, Any]:
    found = subprocess.run(
        [_cli("serve"), "status", "-a", DASHBOARD_ADDRESS],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_cli_env(),
    )
    if found.returncode != 0:
        return {}
    return yaml.safe_load(found.stdout) or {}


def _wait_until_healthy(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        status = _serve_status()
        application = (status.get("applications") or {}).get(APP_NAME) or {}
        deployments = application.get("deployments") or {}
        states = {name: info.get("status") for name, info in deployments.items()}
        summary = f"app {application.get('status', '?')}: {states}"
        if summary != last:
            print(summary, flush=True)
            last = summary
        if application.get("status") == "DEPLOY_FAILED":
            print(application.get("message", ""), file=sys.stderr)
            return False
        if application.get("status") == "RUNNING" and states and all(s == "HEALTHY" for s in states.values()):
            try:
                health = httpx.get(f"http://{_head_host()}:{port}/health", timeout=30).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            models = health.get("models", {})
            if models and all(state.get("state") == "ready" for state in models.values()):
                print(json.dumps(health), flush=True)
                return True
        time.sleep(3)
    return False


def _ray_running() -> bool:
    # --address: the head this command manages, not whichever cluster started last on the machine
    found = subprocess.run(
        [_cli("ray"), "status", f"--address=127.0.0.1:{HEAD_PORT}"],
        capture_output=True,
        text=True,
        env=_cli_env(),
    )
    return found.returncode == 0


def _read_state() -> dict[str, Any]:
    return json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}


def up(port: int, host: str, timeout_s: float) -> int:
    state = _read_state()
    if not _local_cluster():
        print(f"using the Ray cluster at RAY_ADDRESS={os.environ['RAY_ADDRESS']}")
    elif _ray_running():
        started_here = (
            "started by `make serve`" if state.get("started_ray") else "left running by `make serve-stop`"
        )
        print(f"using the Ray cluster already running on this machine ({started_here})")
    else:
        ensure_auth_token()
        # a local head node; other machines join with `ray start --address=<this host>:HEAD_PORT`
        _run(
            [
                _cli("ray"),
                "start",
                "--head",
                f"--port={HEAD_PORT}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={DASHBOARD_PORT}",
                "--disable-usage-stats",
                *EXTRA_START_ARGS,
            ]
        )
        state["started_ray"] = True
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(state))
    config = _deploy_config(port, host)
    try:
        _run([_cli("serve"), "deploy", str(config), "-a", DASHBOARD_ADDRESS])
    finally:
        config.unlink(missing_ok=True)
    if not _wait_until_healthy(port, timeout_s):
        print(f"the app did not become healthy within {timeout_s:.0f} s; see `serve status`", file=sys.stderr)
        return 1
    print(f"Ray Serve answers on http://{host}:{port} (docs at /docs); stop it with `make serve-stop`")
    return 0


def down() -> int:
    state = _read_state()
    _run([_cli("serve"), "shutdown", "-y", "-a", DASHBOARD_ADDRESS], check=False)
    if state.get("started_ray"):
        _run([_cli("ray"), "stop"], check=False)
    else:
        print("the Ray cluster was not started by `make serve`; leaving it running")
    STATE_FILE.unlink(missing_ok=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serve.cluster", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "up", help="start Ray if needed, deploy serve/config.yaml, wait until healthy"
    )
    start.add_argument("--port", type=int, default=int(os.environ.get("SERVE_PORT", "8000")))
    start.add_argument("--host", default=os.environ.get("SERVE_HOST", "127.0.0.1"))
    start.add_argument("--timeout", type=float, default=float(os.environ.get("SERVE_TIMEOUT", "900")))
    commands.add_parser("down", help="shut the app down, and the local Ray cluster if `up` started it")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.port, args.host, args.timeout)
    return down()


if __name__ == "__main__":
    sys.exit(main())
