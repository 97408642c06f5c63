"""On a 390×844 phone the answer comes into view by itself on Language and Recommendation (the Speech
page has its own phone test), and neither page scrolls sideways."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.browser import assert_no_sideways_scroll, expect_in_upper_part, open_page, wait_for_idle

TIMEOUT_MS = 90_000


def test_language_answer_comes_into_view(phone, app_url):
    page = phone
    open_page(page, app_url, "Language")
    assert_no_sideways_scroll(page)
    page.get_by_label("Text to analyse").fill("The soup was cold, the waiter rude and the bill wrong.")
    page.get_by_role("button", name="Analyse sentiment").tap()
    wait_for_idle(page)
    expect(page.get_by_text("Sentiment: negative")).to_be_visible(timeout=TIMEOUT_MS)
    expect_in_upper_part(page, ".st-key-nlp_result")  # the scroll runs once the result's frame has loaded
    assert_no_sideways_scroll(page)


def test_recommendations_come_into_view(phone, app_url):
    page = phone
    open_page(page, app_url, "Recommendation")
    assert_no_sideways_scroll(page)
    example = page.get_by_role("button", name="Sci fi fan")
    example.scroll_into_view_if_needed()
    example.tap()
    wait_for_idle(page)
    expect(page.get_by_text("Because you rated").first).to_be_visible(timeout=TIMEOUT_MS)
    expect_in_upper_part(page, ".st-key-rec_result")
    assert_no_sideways_scroll(page)
