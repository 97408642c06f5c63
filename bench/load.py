"""`make loadtest` (`python -m bench.load`): the REST API under load, in-process and on Ray Serve.

Closed-loop clients (each sends its next request when the last one is answered) at 1, 8, 32 and 64
at once, on a mixed workload that cycles through one image (models/vision/examples), one clip
(models/speech/examples), one sentence and one recommendation request, against three backends:

    inprocess   serve/api.py under uvicorn, one worker: the models run in the server process
    ray-1       Ray Serve (serve/ray_app.py), one replica per task, vision/speech/nlp batched
    ray-2       Ray Serve, two replicas per task

Each cell runs for --seconds (default 15) or --max-requests, whichever comes first; requests then in
flight finish and count. It reports throughput, p50 and p95 latency, errors, and, on Ray, the batch
sizes the batched deployments actually formed (from GET /v1/stats, before and after the cell). The
load generator runs on the same machine as the servers and takes its share of the CPUs.

Writes bench/load.json and prints a markdown table (also put in the README between the
`<!-- load:start -->` and `<!-- load:end -->` markers when they exist). Traffic goes only to servers
this command starts on 127.0.0.1, and it stops them, Ray included, before it returns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import replace_readme_section
from bench.app_server import free_port
from services.tasks import TASKS

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_PATH = REPO_ROOT / "bench" / "load.json"
LEVELS = (1, 8, 32, 64)
BACKENDS = ("inprocess", "ray-1", "ray-2")
REQUEST_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 900.0  # four models load on two shared cores
BATCHED = tuple(name for name, task in TASKS.items() if task.batched)  # Ray Serve merges these
KINDS = ("image", "clip", "sentence", "recommend")

IMAGES = ["drawn_3.png", "print_5.jpg", "photo_8.jpg", "mnist_test_0000.png"]
CLIPS = ["2_jackson_0.wav", "4_nicolas_3.wav", "6_theo_2.wav", "9_lucas_4.wav"]
SENTENCES = [
    "What a wonderful, heartfelt and funny film.",
    "Dull, predictable and far too long.",
    "The staff were friendly and the room was spotless.",
    "The battery died after two days.",
]
RECOMMEND_REQUESTS = [
    {"ratings": {"50": 5, "172": 4.5, "181": 4}, "k": 10},
    {"user": 42, "k": 10},
    {"ratings": {"1": 4, "71": 5, "94": 3}, "k": 10},
    {"user": 186, "k": 10},
]


def _workload() -> dict[str, list[dict[str, Any]]]:
    """Ready-made request arguments per kind (bytes read once, not per request)."""
    vision_dir = REPO_ROOT / "models" / "vision" / "examples"
    speech_dir = REPO_ROOT / "models" / "speech" / "examples"
    return {
        "image": [
            {"url": "/v1/vision", "files": [("files", (name, (vision_dir / name).read_bytes()))]}
            for name in IMAGES
        ],
        "clip": [
            {"url": "/v1/speech", "files": [("files", (name, (speech_dir / name).read_bytes()))]}
            for name in CLIPS
        ],
        "sentence": [{"url": "/v1/sentiment", "json": {"texts": [text]}} for text in SENTENCES],
        "recommend": [{"url": "/v1/recommend", "json": body} for body in RECOMMEND_REQUESTS],
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


async def _cell(base_url: str, concurrency: int, seconds: float, max_requests: int) -> dict[str, Any]:
    workload = _workload()
    issued = 0
    samples: list[tuple[str, float, bool, str]] = []  # kind, ms, ok, error
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:

        async def one_client() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and issued < max_requests:
                index = issued
                issued += 1
                kind = KINDS[index % len(KINDS)]
                request = workload[kind][(index // len(KINDS)) % len(workload[kind])]
                started = time.perf_counter()
                error = ""
                try:
                    response = await client.post(
                        request["url"], files=request.get("files"), json=request.get("json")
                    )
                    ok = response.status_code == 200
                    if not ok:
                        error = f"HTTP {response.status_code}"
                except httpx.HTTPError as err:
                    ok, error = False, type(err).__name__
                samples.append((kind, (time.perf_counter() - started) * 1000, ok, error))

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started

    latencies = [ms for _, ms, ok, _ in samples if ok]
    errors = [error for _, _, ok, error in samples if not ok]
    per_kind = {
        kind: {
            "requests": sum(1 for k, *_ in samples if k == kind),
            "p50_ms": _percentile([ms for k, ms, ok, _ in samples if k == kind and ok], 50),
        }
        for kind in KINDS
    }
    return {
        "concurrency": concurrency,
        "requests": len(samples),
        "seconds": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "per_kind": per_kind,
    }


def _batch_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Forward-pass sizes formed during one cell, per batched task."""
    formed = {}
    for task in BATCHED:
        old = {int(k): v for k, v in before["tasks"][task]["forward_sizes"].items()}
        new = {int(k): v for k, v in after["tasks"][task]["forward_sizes"].items()}
        sizes = {size: new.get(size, 0) - old.get(size, 0) for size in new}
        sizes = {size: count for size, count in sorted(sizes.items()) if count > 0}
        forwards = sum(sizes.values())
        items = sum(size * count for size, count in sizes.items())
        formed[task] = {
            "forwards": forwards,
            "mean": round(items / forwards, 2) if forwards else None,
            "max": max(sizes) if sizes else None,
            "sizes": {str(size): count for size, count in sizes.items()},
        }
    return formed


def _wait_ready(base_url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            models = httpx.get(f"{base_url}/health", timeout=30).json().get("models", {})
            if models and all(state.get("state") == "ready" for state in models.values()):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(2)
    raise TimeoutError(f"{base_url} did not report every model ready within {timeout_s:.0f} s")


def _warm_up(base_url: str) -> None:
    # one request of each kind, so no cell pays for a first call (lazy imports, ONNX session warm-up)
    asyncio.run(_cell(base_url, 1, seconds=60, max_requests=len(KINDS)))


def _run_levels(backend: str, base_url: str, levels, seconds, max_requests, stats: bool) -> list[dict]:
    _warm_up(base_url)
    cells = []
    for concurrency in levels:
        before = httpx.get(f"{base_url}/v1/stats", timeout=60).json() if stats else None
        cell = asyncio.run(_cell(base_url, concurrency, seconds, max_requests))
        if stats:
            cell["batches"] = _batch_delta(before, httpx.get(f"{base_url}/v1/stats", timeout=60).json())
        else:
            cell["batches"] = None  # one request, one forward: nothing merges requests in-process
        cell["backend"] = backend
        print(_row(cell), flush=True)
        cells.append(cell)
    return cells


def _inprocess(levels, seconds, max_requests) -> list[dict]:
    port = free_port()
    env = os.environ | {"API_PRELOAD": "1"}
    command = [sys.executable, "-m", "uvicorn", "serve.api:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url)
        return _run_levels("inprocess", base_url, levels, seconds, max_requests, stats=False)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _ray_options(replicas: int) -> dict[str, dict[str, Any]]:
    """serve/config.yaml's settings, with a fixed replica count and CPU shares that fit two cores."""
    from serve import ray_app

    options = ray_app.deployment_options()
    model_cpus = 0.4 if replicas == 1 else 0.2  # logical CPUs: 4 tasks x replicas + ingress 0.2 <= 2
    for name, settings in options.items():
        if name == ray_app.INGRESS_NAME:
            continue
        settings.pop("autoscaling_config", None)
        settings["num_replicas"] = replicas
        settings["ray_actor_options"] = dict(settings.get("ray_actor_options", {})) | {"num_cpus": model_cpus}
    return options


def _ray(backends, levels, seconds, max_requests) -> dict[str, list[dict]]:
    import ray
    from ray import serve

    from serve import ray_app

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    results = {}
    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        for backend in backends:
            replicas = int(backend.split("-")[1])
            started = time.perf_counter()
            serve.run(
                ray_app.build_application(_ray_options(replicas)), name=ray_app.APP_NAME, route_prefix="/"
            )
            _wait_ready(base_url)
            print(f"{backend}: deployed and healthy in {time.perf_counter() - started:.0f} s", flush=True)
            results[backend] = _run_levels(backend, base_url, levels, seconds, max_requests, stats=True)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    return results


def _batches_text(batches: dict[str, Any] | None) -> str:
    if batches is None:
        return "1 (no merging)"
    parts = []
    for task in BATCHED:
        formed = batches[task]
        if formed["forwards"]:
            parts.append(f"{task} {formed['mean']:g}/{formed['max']}")
    return ", ".join(parts) or "-"


def _row(cell: dict[str, Any]) -> str:
    return (
        f"| {cell['backend']} | {cell['concurrency']} | {cell['requests']} | {cell['throughput_rps']:.1f} | "
        f"{cell['p50_ms']} | {cell['p95_ms']} | {cell['errors']} | {_batches_text(cell['batches'])} |"
    )


def markdown_table(report: dict[str, Any]) -> str:
    lines = [
        f"`make loadtest` on {report['machine']}, {report['seconds_per_cell']:g} s per cell, mixed workload "
        "(image, clip, sentence, recommendation in turn); batch sizes are items per forward pass, mean/max.",
        "",
        "| backend | clients | requests | req/s | p50 ms | p95 ms | errors | batch sizes formed (mean/max) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(cell) for cell in report["cells"]]
    by_key = {(cell["backend"], cell["concurrency"]): cell for cell in report["cells"]}
    ratios = []
    for concurrency in report["levels"]:
        base = by_key.get(("inprocess", concurrency))
        for backend in ("ray-1", "ray-2"):
            other = by_key.get((backend, concurrency))
            if base and other and base["throughput_rps"]:
                ratios.append(
                    f"{backend}/inprocess at {concurrency}: {other['throughput_rps'] / base['throughput_rps']:.2f}x"
                )
    if ratios:
        lines += ["", "Throughput ratios: " + "; ".join(ratios) + "."]
    return "\n".join(lines)


def _machine() -> str:
    return f"{platform.machine()} Linux, {os.cpu_count()} CPUs, {platform.python_version()}"


def run(backends=BACKENDS, levels=LEVELS, seconds: float = 15.0, max_requests: int = 3000) -> dict[str, Any]:
    cells: list[dict] = []
    print(
        "| backend | clients | requests | req/s | p50 ms | p95 ms | errors | batch sizes formed (mean/max) |"
    )
    if "inprocess" in backends:
        cells += _inprocess(levels, seconds, max_requests)
    ray_backends = [backend for backend in backends if backend.startswith("ray-")]
    if ray_backends:
        for backend_cells in _ray(ray_backends, levels, seconds, max_requests).values():
            cells += backend_cells
    return {
        "command": "python -m bench.load " + " ".join(sys.argv[1:]),
        "machine": _machine(),
        "levels": list(levels),
        "seconds_per_cell": seconds,
        "max_requests_per_cell": max_requests,
        "cells": cells,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--levels", nargs="+", type=int, default=list(LEVELS))
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each cell")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests per cell at most")
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    args = parser.parse_args(argv)
    report = run(tuple(args.backends), tuple(args.levels), args.seconds, args.max_requests)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    print()
    print(table)
    if args.out == OUT_PATH:
        replace_readme_section("load", table)
    return 0 if all(cell["errors"] == 0 for cell in report["cells"]) else 1


if __name__ == "__main__":
    sys.exit(main())
