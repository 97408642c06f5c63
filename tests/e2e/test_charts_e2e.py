"""Every chart the app draws is readable, on a desktop and on a 390×844 phone: a plotting area of at
least 120 px and marks that use its height (tests/e2e/charts.py says how that is measured)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import open_page, wait_for_idle
from tests.e2e.charts import measure_charts, unreadable

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
TIMEOUT_MS = 90_000


@pytest.fixture(params=list(VIEWPORTS))
def viewport_page(request, browser):
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    page = context.new_page()
    yield page
    context.close()


def test_model_card_charts_are_readable(viewport_page, app_url):
    page = viewport_page
    open_page(page, app_url, "Model_cards")
    measured = []
    for tab in ("Vision", "Language", "Speech", "Recommendation"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(800)
        wait_for_idle(page)
        measured += measure_charts(page)
    assert len(measured) >= 3, measured  # a confusion matrix for vision, language and speech at least
    assert not unreadable(measured), unreadable(measured)
    expect(page.get_by_text("Traceback")).to_have_count(0)


@pytest.fixture(scope="module")
def old_chart_url():
    """The fixture page on its own Streamlit server (loopback, stopped after the module)."""
    import subprocess
    import sys
    import time
    import urllib.request

    from bench.app_server import free_port, stop_app
    from tests.e2e.conftest import REPO_ROOT

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "tests/e2e/fixtures/old_speech_chart.py",
         "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    yield url
    stop_app(server)


def test_the_check_fails_on_the_old_speech_chart(viewport_page, old_chart_url):
    page = viewport_page
    open_page(page, old_chart_url)
    page.locator("[data-testid='stVegaLiteChart'] svg.marks").nth(1).wait_for(timeout=TIMEOUT_MS)
    old, roomy = measure_charts(page)
    assert unreadable([old]), old  # 150 px with the legend on top: too little room to plot
    assert not unreadable([roomy]), roomy
