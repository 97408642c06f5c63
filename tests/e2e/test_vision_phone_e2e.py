"""The Vision page on a 390×844 phone: a photo of a number is read, nothing scrolls sideways, every
control is reachable, and the camera is offered. Saves the picture vision_phone_number.png
(committed by `make screenshots`)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from models.vision import EXAMPLES_DIR
from tests.e2e.browser import (
    OVERFLOW_JS,
    PHONE,
    draw_one,
    expect_no_sideways_scroll,
    open_page,
    upload,
    wait_for_idle,
)

TIMEOUT_MS = 90_000


def _no_sideways_scroll(page) -> None:
    found = page.evaluate(OVERFLOW_JS)
    assert not found["scrolled"] and not found["wide"], found
    # The plain measure a phone user feels: the document cannot be dragged sideways.
    widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def test_phone_reads_a_number_without_sideways_scrolling(phone, app_url, readme_screenshots):
    page = phone
    open_page(page, app_url, "Vision")
    expect(page.get_by_text("Vision: digits and numbers")).to_be_visible(timeout=TIMEOUT_MS)
    _no_sideways_scroll(page)
    upload(page, EXAMPLES_DIR / "number_photo_4233.jpg")
    expect(page.get_by_text("Predicted number: 4233")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name="4233", exact=True)).to_be_visible()  # the number in large type
    # Each digit is a control: choosing the third shows its own view.
    digits = page.get_by_role("radiogroup", name="Digit to explain").locator("label")
    expect(digits).to_have_count(4)
    digits.nth(2).click()
    wait_for_idle(page)
    expect(page.get_by_text(re.compile("digit 3 of 4"))).to_be_visible(timeout=TIMEOUT_MS)
    expect_no_sideways_scroll(page)  # retried while the digit's view is drawn
    _no_sideways_scroll(page)
    page.get_by_text("What was read, digit by digit").scroll_into_view_if_needed()
    page.screenshot(path=str(readme_screenshots / "vision_phone_number.png"), full_page=True)


def test_phone_reaches_every_tab_and_the_camera(phone, app_url):
    page = phone
    open_page(page, app_url, "Vision")
    for name in ("Camera", "Draw", "Examples", "Upload"):
        tab = page.get_by_role("tab", name=re.compile(name))
        tab.scroll_into_view_if_needed()
        tab.click()
        wait_for_idle(page)
        _no_sideways_scroll(page)
    page.get_by_role("tab", name=re.compile("Camera")).click()
    page.get_by_text("Use the camera").click()
    wait_for_idle(page)
    expect(page.get_by_test_id("stCameraInput")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stCameraInput").get_by_text("Take a photo")).to_be_visible()
    page.get_by_role("tab", name=re.compile("Draw")).click()
    wait_for_idle(page)
    canvas = page.locator("canvas").last
    canvas.wait_for(timeout=TIMEOUT_MS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    _no_sideways_scroll(page)


def test_phone_example_result_is_in_view(phone, app_url):
    """The gallery is taller than a phone screen: the result of a click must not be left below it."""
    page = phone
    open_page(page, app_url, "Vision")
    page.get_by_role("tab", name=re.compile("Examples")).click()
    wait_for_idle(page)
    tile = page.get_by_role("button", name="Digit 7").first
    tile.scroll_into_view_if_needed()
    tile.click()
    wait_for_idle(page)
    heading = page.get_by_text("Predicted digit: 7")
    expect(heading).to_be_visible(timeout=TIMEOUT_MS)
    expect(heading).to_be_in_viewport(timeout=10_000)
    _no_sideways_scroll(page)


def test_phone_canvas_buttons_and_undo(phone, app_url):
    """Clear and Undo are plain buttons a finger can reach (no hover toolbar); Undo takes back a stroke."""
    page = phone
    open_page(page, app_url, "Vision")
    page.get_by_role("tab", name=re.compile("Draw")).click()
    wait_for_idle(page)
    canvas = page.locator("canvas").last
    canvas.wait_for(timeout=TIMEOUT_MS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    draw_one(page, box["x"] + box["width"] * 0.3, box["y"], box["height"])
    wait_for_idle(page)
    draw_one(page, box["x"] + box["width"] * 0.65, box["y"], box["height"])
    wait_for_idle(page)
    expect(page.get_by_text("Predicted number: 11")).to_be_visible(timeout=TIMEOUT_MS)
    clear = page.get_by_role("button", name=re.compile("Clear canvas"))
    undo = page.get_by_role("button", name=re.compile("Undo last stroke"))
    for button in (clear, undo):
        button.scroll_into_view_if_needed()
        expect(button).to_be_visible()
        expect(button).to_be_enabled()
        found = button.bounding_box()
        assert found is not None and found["x"] >= 0 and found["x"] + found["width"] <= PHONE["width"], found
    _no_sideways_scroll(page)
    # Issue 32: Undo sits right beside Clear, on the same row, not a screen away.
    clear_box, undo_box = clear.bounding_box(), undo.bounding_box()
    assert abs(clear_box["y"] - undo_box["y"]) < 4, (clear_box, undo_box)
    assert 0 <= undo_box["x"] - (clear_box["x"] + clear_box["width"]) < 40, (clear_box, undo_box)
    # ... and the canvas's own toolbar (shown on touch screens) does not cover the drawing hint.
    hint = page.get_by_text("Write one digit or a whole number").bounding_box()
    toolbar = page.locator(".dc-toolbar-card").first.bounding_box()
    assert toolbar is not None and hint is not None
    assert toolbar["y"] >= hint["y"] + hint["height"] or toolbar["x"] >= hint["x"] + hint["width"], (
        hint,
        toolbar,
    )
    undo.click()
    wait_for_idle(page)
    expect(page.get_by_text("Predicted digit: 1")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Predicted number: 11")).to_have_count(0)
    expect(page.get_by_text("Nothing drawn yet.")).to_have_count(0)
    clear.click()
    wait_for_idle(page)
    expect(page.get_by_text("Nothing drawn yet.")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text(re.compile("Predicted (digit|number)"))).to_have_count(0)
