"""The app as a user meets it: cold load of each model, memory with all four, and `make run`'s start
(server start -> health check -> home page -> all four self-tests answered)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.tasks import TASKS

REPO_ROOT = Path(__file__).resolve().parents[1]


def bench_cold_loads() -> dict:
    """Each model loaded in a fresh interpreter (imports included), then all four in one process."""
    loads = {}
    for task in TASKS:
        code = (
            "import time; t=time.perf_counter(); from services import registry; "
            f"registry.load({task!r}); print(time.perf_counter()-t)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        loads[task] = round(float(out.stdout.strip().splitlines()[-1]), 2)
    code = (
        "import psutil; from services import registry; "
        + "; ".join(f"registry.load({t!r})" for t in TASKS)
        + "; print(psutil.Process().memory_info().rss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return {
        "cold_load_s": loads,
        "rss_all_models_mb": round(int(out.stdout.strip().splitlines()[-1]) / 2**20, 1),
    }


def bench_app_start() -> dict:
    """`make run`'s server start → health answers → home page shown → all four self-tests answered.

    Chromium is started before the server, so its own start-up is not counted as the app's.
    """
    import shutil

    import psutil

    from bench.app_server import CHROMIUM_ARGS, start_app, stop_app

    chromium = shutil.which("chromium")
    if not chromium:
        return {"browser": "chromium not installed: page timings skipped"}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        started = time.perf_counter()
        server, url = start_app(poll_s=0.02)
        result: dict = {"to_health_s": round(time.perf_counter() - started, 2)}
        try:
            page.goto(url)
            page.get_by_text("Live self-test").wait_for(timeout=120_000)
            result["to_first_page_s"] = round(time.perf_counter() - started, 2)
            page.wait_for_function(
                "document.querySelectorAll(\"[data-testid='stAlertContentSuccess']\").length >= 4",
                timeout=300_000,
            )
            result["to_all_models_answering_s"] = round(time.perf_counter() - started, 2)
            result["server_rss_mb"] = round(psutil.Process(server.pid).memory_info().rss / 2**20, 1)
        finally:
            browser.close()
            stop_app(server)
    return result
