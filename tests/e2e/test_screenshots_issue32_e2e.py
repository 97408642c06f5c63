"""Screenshots of items 1-8 of issue 32, on a 1440×900 desktop and a 390×844 phone, in the dark theme the
stakeholder used. Runs only with SCREENSHOTS=1, like tests/e2e/test_screenshots_e2e.py, whose app
fixture and helpers it shares:

    SCREENSHOTS=1 python -m pytest tests/e2e/test_screenshots_issue32_e2e.py   # -> docs/screenshots/issue32/after
    git archive a0fd89f | tar -x -C /tmp/before && ln -s "$PWD/.venv" /tmp/before/.venv
    SCREENSHOTS=1 SCREENSHOT_APP_ROOT=/tmp/before SCREENSHOT_OUT=docs/screenshots/issue32/before \\
        python -m pytest tests/e2e/test_screenshots_issue32_e2e.py

Each picture is the screen with the item's element scrolled to the top (below the header bar), so before and after compare
at the same place. The behaviour itself is asserted by the AppTests and e2e tests named in
docs/screenshots/README.md.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.e2e import test_screenshots_e2e as shots
from tests.e2e.browser import PHONE, open_page, upload, wait_for_idle
from tests.e2e.conftest import REPO_ROOT
from tests.e2e.test_screenshots_e2e import shot_app_url  # noqa: F401 (the shared app fixture)

pytestmark = shots.pytestmark
OUT = REPO_ROOT / os.environ.get("SCREENSHOT_OUT", "docs/screenshots/issue32/after")
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": PHONE}
TITANIC_PROFILE = "127:5,1:4,100:5,313:2"  # Godfather 5, Toy Story 4, Fargo 5, Titanic 2 (the issue's)


def _screen(page, item: str, width_name: str, target=None):
    """The screen with `target` (when it is there) scrolled to the top."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{item}-{width_name}.jpg"
    page.wait_for_timeout(800)  # charts finish drawing
    if target is not None:
        try:
            target.first.wait_for(state="visible", timeout=shots.STEP_MS)
            # to the top, clear of Streamlit's fixed header bar
            target.first.evaluate(
                "e => { e.style.scrollMarginTop = '5rem'; e.scrollIntoView({block: 'start'}); }"
            )
            page.wait_for_timeout(400)
        except PlaywrightError:
            if shots.STRICT:
                raise
    page.screenshot(path=str(path), type="jpeg", quality=shots.QUALITY)
    return path


def _tab(page, name: str) -> None:
    tab = page.get_by_role("tab", name=re.compile(name))
    tab.first.click(timeout=shots.STEP_MS)
    page.wait_for_timeout(300)
    wait_for_idle(page)


def _titanic_profile(page) -> None:
    open_page(page, shots.shot_url(page), f"Recommendation?ratings={TITANIC_PROFILE}")
    expect(page.get_by_text(re.compile("★ predicted")).first).to_be_visible(timeout=90_000)


def explanations(page, width_name):
    _titanic_profile(page)
    return _screen(page, "explanations", width_name, page.get_by_text("Recommended for you"))


def more_like_this(page, width_name):
    _titanic_profile(page)
    _tab(page, "More like this")
    return _screen(page, "more-like-this", width_name, page.locator("[role='tabpanel']:visible"))


def card_metrics(page, width_name):
    open_page(page, shots.shot_url(page), "Model_cards")
    _tab(page, "Recommendation")
    return _screen(page, "card-metrics", width_name, page.get_by_text("Measured here").last)


def cost_curve(page, width_name):
    open_page(page, shots.shot_url(page), "Model_cards")
    _tab(page, "Recommendation")
    return _screen(page, "cost-curve", width_name, page.get_by_text("Cost curve").last)


def api_page(page, width_name):
    open_page(page, shots.shot_url(page), "API")
    return _screen(page, "api-try-it", width_name, page.get_by_role("heading", name="Try it"))


def waveform(page, width_name):
    open_page(page, shots.shot_url(page), "Speech")
    upload(page, shots.SPEECH_EXAMPLE)
    expect(page.get_by_text("Heard").first).to_be_visible(timeout=90_000)
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    return _screen(page, "waveform", width_name, chart)


def canvas(page, width_name):
    open_page(page, shots.shot_url(page), "Vision")
    _tab(page, "Draw")
    page.wait_for_timeout(1500)  # the canvas component loads in its frame
    return _screen(page, "canvas", width_name, page.locator("[role='tabpanel']:visible"))


def speech_share(page, width_name):
    open_page(page, shots.shot_url(page), "Speech")
    upload(page, shots.SPEECH_EXAMPLE)
    expect(page.get_by_text("Heard").first).to_be_visible(timeout=90_000)
    buttons = page.get_by_role("button", name=re.compile("Copy link"))
    return _screen(page, "speech-share", width_name, buttons)


ITEMS = {
    "explanations": explanations,  # item 1
    "more-like-this": more_like_this,  # item 2
    "card-metrics": card_metrics,  # item 3
    "api-try-it": api_page,  # item 4
    "waveform": waveform,  # item 5
    "cost-curve": cost_curve,  # item 6
    "canvas": canvas,  # item 7
    "speech-share": speech_share,  # item 8
}


@pytest.mark.parametrize("width_name", list(VIEWPORTS))
@pytest.mark.parametrize("item", list(ITEMS))
def test_screenshot(item, width_name, browser, shot_app_url):  # noqa: F811
    phone = width_name == "phone"
    context = browser.new_context(
        viewport=VIEWPORTS[width_name], is_mobile=phone, has_touch=phone, color_scheme="dark"
    )
    shots._APP["url"] = shot_app_url
    page = context.new_page()
    try:
        try:
            path = ITEMS[item](page, width_name)
        except (PlaywrightError, AssertionError):
            if shots.STRICT:
                raise
            path = _screen(page, item, width_name)  # the older app: keep what it showed
        assert path.is_file() and path.stat().st_size > 2_000, path
    finally:
        context.close()
