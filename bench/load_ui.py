"""`make loadtest-ui` (`python -m bench.load_ui`): a room full of users on the real app.

Several headless Chromium sessions at once each run the flow a demo visitor runs: open Vision,
upload a digit and wait for the answer, then open Language, type a sentence and wait for its
sentiment. For 1, 4 and 8 sessions at once it reports the median and maximum time to see the digit
and to see the sentiment, the failures, the server's CPU-seconds per flow and its resident memory,
and writes them to bench/load_ui.json.

Traffic goes only to the app this command starts on 127.0.0.1; every flow has a deadline, so the
run stops by itself (at most sum(levels) flows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from pathlib import Path

import psutil

from bench import replace_readme_section
from bench.app_server import CHROMIUM_ARGS, start_app, stop_app

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_PATH = REPO_ROOT / "bench" / "load_ui.json"
LEVELS = (1, 4, 8)
FLOW_TIMEOUT_MS = 120_000  # one step of one flow; a step slower than this counts as a failure
IMAGES = ["print_5.jpg", "photo_3.jpg", "photo_8.jpg", "chalk_6.jpg"]  # bundled vision examples
SENTENCES = [
    "What a wonderful, heartfelt and funny film.",
    "The staff were friendly and the room was spotless.",
    "Dull, predictable and far too long.",
    "The battery died after two days.",
]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
DIGIT_ANSWER = re.compile(r"Predicted (digit|number)")  # the Vision page's answer heading
SENTIMENT_ANSWER = re.compile(r"Sentiment: (positive|negative|mixed)")  # the Language page's answer


def _process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu_seconds(pid: int) -> float:
    total = 0.0
    for process in _process_tree(pid):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def _flow(browser, url: str, index: int) -> dict:
    """One visitor: opens Vision, uploads → digit shown; the sidebar's Language, a sentence → sentiment."""
    from models.vision import EXAMPLES_DIR

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    record: dict = {"session": index}
    try:
        await page.goto(f"{url}/Vision", timeout=FLOW_TIMEOUT_MS)
        await page.wait_for_selector(IDLE, timeout=FLOW_TIMEOUT_MS)
        started = time.perf_counter()
        uploader = page.get_by_test_id("stFileUploaderDropzoneInput").first
        await uploader.set_input_files(str(EXAMPLES_DIR / IMAGES[index % len(IMAGES)]))
        await page.get_by_text(DIGIT_ANSWER).first.wait_for(timeout=FLOW_TIMEOUT_MS)
        record["digit_s"] = round(time.perf_counter() - started, 2)

        # As a visitor does: the sidebar link (the app switches page without reloading itself).
        await (
            page.get_by_test_id("stSidebar")
            .get_by_text("Language", exact=True)
            .click(timeout=FLOW_TIMEOUT_MS)
        )
        await page.get_by_label("Text to analyse").wait_for(timeout=FLOW_TIMEOUT_MS)
        await page.wait_for_selector(IDLE, timeout=FLOW_TIMEOUT_MS)
        started = time.perf_counter()
        await page.get_by_label("Text to analyse").fill(SENTENCES[index % len(SENTENCES)])
        await page.get_by_role("button", name="Analyse sentiment").click()
        await page.get_by_text(SENTIMENT_ANSWER).first.wait_for(timeout=FLOW_TIMEOUT_MS)
        record["sentiment_s"] = round(time.perf_counter() - started, 2)
    except Exception as err:  # noqa: BLE001 - a failed flow is a data point, not a crash
        record["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    finally:
        await context.close()
    return record


async def _level(url: str, server_pid: int, sessions: int, chromium: str) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        cpu_before = _cpu_seconds(server_pid)
        started = time.perf_counter()
        flows = await asyncio.gather(*(_flow(browser, url, i) for i in range(sessions)))
        wall = time.perf_counter() - started
        cpu_used = _cpu_seconds(server_pid) - cpu_before
        await browser.close()
    ok = [f for f in flows if "error" not in f]
    digit = [f["digit_s"] for f in ok]
    sentiment = [f["sentiment_s"] for f in ok]
    rss = sum(p.memory_info().rss for p in _process_tree(server_pid) if p.is_running())
    return {
        "sessions": sessions,
        "digit_median_s": round(statistics.median(digit), 2) if digit else None,
        "digit_max_s": max(digit) if digit else None,
        "sentiment_median_s": round(statistics.median(sentiment), 2) if sentiment else None,
        "sentiment_max_s": max(sentiment) if sentiment else None,
        "failures": len(flows) - len(ok),
        "errors": sorted({f["error"] for f in flows if "error" in f}),
        "server_cpu_s_per_flow": round(cpu_used / sessions, 3),
        "server_rss_mb": round(rss / 2**20, 1),
        "wall_s": round(wall, 2),
    }


def run(levels: tuple[int, ...] = LEVELS) -> dict:
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("system Chromium not found (apt-get install chromium)")
    server, url = start_app()
    try:
        # One unmeasured visitor first: the models finish loading and Chromium's first start is paid.
        warm = asyncio.run(_level(url, server.pid, 1, chromium))
        results = [asyncio.run(_level(url, server.pid, n, chromium)) for n in levels]
    finally:
        stop_app(server)
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": psutil.cpu_count(),
        "flow": "Vision upload → digit shown; Language sentence → sentiment shown",
        "warm_up": warm,
        "levels": results,
    }


def markdown_table(report: dict) -> str:
    rows = [
        "| sessions at once | digit shown (median / max) | sentiment shown (median / max) | failures "
        "| server CPU per flow | server RSS |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for level in report["levels"]:
        rows.append(
            f"| {level['sessions']} | {level['digit_median_s']} s / {level['digit_max_s']} s "
            f"| {level['sentiment_median_s']} s / {level['sentiment_max_s']} s | {level['failures']} "
            f"| {level['server_cpu_s_per_flow']} s | {level['server_rss_mb'] / 1024:.2f} GB |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="sessions at once, e.g. 1,4,8")
    args = parser.parse_args(argv)
    levels = tuple(int(n) for n in args.levels.split(",") if n.strip())
    if not levels or min(levels) < 1 or max(levels) > 32:
        parser.error("levels must be between 1 and 32 sessions")
    report = run(levels)
    OUT_PATH.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    replace_readme_section(
        "load-ui",
        f"Measured by `make loadtest-ui` on {report['date']} ({report['cpu_count']} cores).\n\n{table}",
    )
    print(table)
    print(json.dumps({"load_ui": report["levels"]}))
    return 0 if all(level["failures"] == 0 for level in report["levels"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
