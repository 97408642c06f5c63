"""Browser tests of the Vision page through the system Chromium: upload, example click, canvas."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from models.vision import EXAMPLES_DIR
from tests.e2e.browser import draw_one, open_page, upload, wait_for_idle

TIMEOUT_MS = 60_000


def test_upload_a_photo_like_digit_and_see_the_label(page, app_url):
    open_page(page, app_url, "Vision")
    expect(page.get_by_text("Vision: digits and numbers")).to_be_visible(timeout=TIMEOUT_MS)
    upload(page, EXAMPLES_DIR / "print_5.jpg")
    expect(page.get_by_text("Predicted digit: 5")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Model's-eye view (28×28)")).to_be_visible()
    expect(page.get_by_text(re.compile(r"ms on `?CPU|ms on"))).to_be_visible()


def test_bad_upload_shows_a_message(page, app_url, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    open_page(page, app_url, "Vision")
    upload(page, broken)
    expect(page.get_by_text(re.compile("damaged or truncated"))).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)


def test_click_an_example(page, app_url):
    open_page(page, app_url, "Vision")
    page.get_by_role("tab", name=re.compile("Examples")).click()
    page.get_by_role("button", name="Digit 2").first.click()
    wait_for_idle(page)
    expect(page.get_by_text("Predicted digit: 2")).to_be_visible(timeout=TIMEOUT_MS)


def _canvas_box(page) -> dict:
    """The drawing area: the component's last <canvas> (fabric.js draws on the upper of two)."""
    canvas = page.locator("canvas").last
    canvas.wait_for(timeout=TIMEOUT_MS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    return box


def test_draw_a_one_on_the_canvas(page, app_url):
    open_page(page, app_url, "Vision")
    page.get_by_role("tab", name=re.compile("Draw")).click()
    wait_for_idle(page)
    box = _canvas_box(page)
    draw_one(page, box["x"] + box["width"] * 0.5, box["y"], box["height"])
    wait_for_idle(page)
    expect(page.get_by_text("Predicted digit: 1")).to_be_visible(timeout=TIMEOUT_MS)


def test_write_a_number_on_the_wide_canvas(page, app_url):
    open_page(page, app_url, "Vision")
    page.get_by_role("tab", name=re.compile("Draw")).click()
    wait_for_idle(page)  # the tab's widgets are re-rendered once after the switch
    expect(page.get_by_text("Wide")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_text("Wide").click()
    wait_for_idle(page)
    box = _canvas_box(page)
    assert box["width"] >= 600  # the wide canvas
    for left in (0.2, 0.45, 0.7):  # three 1s, side by side
        draw_one(page, box["x"] + box["width"] * left, box["y"], box["height"])
    wait_for_idle(page)
    expect(page.get_by_text("Predicted number: 111")).to_be_visible(timeout=TIMEOUT_MS)


def test_camera_widget_is_present(page, app_url):
    open_page(page, app_url, "Vision")
    page.get_by_role("tab", name=re.compile("Camera")).click()
    page.get_by_text("Use the camera").click()
    wait_for_idle(page)
    expect(page.get_by_test_id("stCameraInput")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stCameraInput").get_by_text("Take a photo")).to_be_visible()
