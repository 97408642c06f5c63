"""The Speech page on a 390×844 phone: nothing scrolls sideways, every way to give audio is reachable,
a bundled example is heard and the answer is brought into view. Saves the README picture
speech_phone.jpg (committed by `make screenshots`)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.browser import PHONE, assert_no_sideways_scroll, expect_in_upper_part, open_page, wait_for_idle

TIMEOUT_MS = 90_000


def test_speech_on_a_phone(phone, app_url, readme_screenshots):
    page = phone
    open_page(page, app_url, "Speech")
    expect(page.get_by_text("Record, upload or pick an example")).to_be_visible(timeout=TIMEOUT_MS)
    assert_no_sideways_scroll(page)
    # Every control: the About box, the microphone, the upload and each example, each within the screen.
    controls = [
        page.get_by_text("About this model and its limits"),
        page.get_by_test_id("stAudioInput"),
        page.get_by_test_id("stFileUploaderDropzone"),
        *[page.get_by_role("button", name=f"“{digit}”", exact=True) for digit in (2, 4, 6, 7, 9)],
    ]
    for control in controls:
        control.scroll_into_view_if_needed()
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, box
    page.get_by_text("About this model and its limits").click()
    expect(page.get_by_text("Measured on held-out sets")).to_be_visible()
    assert_no_sideways_scroll(page)
    page.get_by_text("About this model and its limits").click()

    page.get_by_role("button", name="“7”", exact=True).tap()
    wait_for_idle(page)
    expect(page.get_by_text("Heard “7”")).to_be_visible(timeout=TIMEOUT_MS)
    # The answer comes on screen without the visitor scrolling down past the inputs (the page scrolls
    # once the result's frame has loaded).
    expect_in_upper_part(page, ".st-key-speech_result")
    assert_no_sideways_scroll(page)
    page.screenshot(path=str(readme_screenshots / "speech_phone.jpg"), type="jpeg", quality=60)
