"""Every chart the app draws is readable, on a desktop and on a 390×844 phone: a plotting area of at
least 120 px and marks that use its height (tests/e2e/charts.py says how that is measured).

Each task page is driven to a result first (a sentence typed, a bundled recording picked, an example
profile loaded), because that is when its charts appear. Not covered: the Recommendation page's genre
chart of an existing MovieLens user, which needs the MovieLens ratings the app does not ship."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import open_page, wait_for_idle
from tests.e2e.charts import measure_charts, unreadable, wait_for_charts

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


def _check(page, expected: int, where: str) -> list[dict]:
    wait_for_charts(page, expected)
    measured = measure_charts(page)
    assert len(measured) >= expected, (where, measured)
    assert not unreadable(measured), (where, unreadable(measured))
    expect(page.get_by_text("Traceback")).to_have_count(0)
    return measured


def test_language_charts_are_readable(viewport_page, app_url):
    page = viewport_page
    open_page(page, app_url, "Language")
    page.get_by_label("Text to analyse").fill("The soup was cold, the waiter rude, but the view was lovely.")
    page.get_by_role("button", name="Analyse sentiment").click()
    wait_for_idle(page)
    expect(page.get_by_text("Sentiment:").first).to_be_visible(timeout=TIMEOUT_MS)
    _check(page, 2, "sentiment")  # the class confidences and each word's push


def test_speech_charts_are_readable(viewport_page, app_url):
    page = viewport_page
    open_page(page, app_url, "Speech")
    page.get_by_role("button", name="“7”", exact=True).click()
    wait_for_idle(page)
    expect(page.get_by_text("Heard “7”")).to_be_visible(timeout=TIMEOUT_MS)
    # The waveform, the class confidences, the spectrogram and the frames that drove the answer.
    _check(page, 4, "one digit")


def test_recommendation_charts_are_readable(viewport_page, app_url):
    page = viewport_page
    open_page(page, app_url, "Recommendation")
    page.get_by_role("button", name="Sci fi fan").click()
    wait_for_idle(page)
    expect(page.get_by_text("Because you rated").first).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Map of the films").click()
    page.wait_for_timeout(500)
    _check(page, 1, "map of the films")


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
