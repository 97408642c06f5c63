"""Language page in the real browser: type a sentence, see the label; bad input shows a message."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models.nlp import SST2_SENTIMENT
from tests.e2e.browser import open_page, upload, wait_for_idle
from tests.e2e.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not SST2_SENTIMENT.weights.is_file(), reason="committed NLP weights missing"),
]


def _analyse(page, text: str) -> None:
    box = page.get_by_label("Text to analyse")
    box.fill(text)
    page.get_by_role("button", name="Analyse sentiment").click()
    page.wait_for_timeout(300)
    wait_for_idle(page)


def test_type_a_sentence_and_see_the_label(page, app_url):
    open_page(page, app_url, "Language")
    expect(page.get_by_text("Language").first).to_be_visible()
    _analyse(page, "What a wonderful, heartfelt and funny film.")
    expect(page.get_by_text("Sentiment: positive")).to_be_visible(timeout=60_000)
    _analyse(page, "A dull, tedious and completely lifeless film.")
    expect(page.get_by_text("Sentiment: negative")).to_be_visible(timeout=60_000)


def test_mixed_opinions_read_as_mixed(page, app_url):
    open_page(page, app_url, "Language")
    _analyse(page, "Great food, rude staff.")
    expect(page.get_by_text("Sentiment: mixed")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Sentiment of each part")).to_be_visible()


def test_empty_input_shows_a_clear_message(page, app_url):
    open_page(page, app_url, "Language")
    _analyse(page, "   ")
    expect(page.get_by_text("the input is empty")).to_be_visible(timeout=60_000)


def test_batch_upload_shows_the_table(page, app_url):
    open_page(page, app_url, "Language")
    page.get_by_role("tab", name="Batch").click()
    upload(page, REPO_ROOT / "models/nlp/examples/batch_reviews.csv")
    expect(page.get_by_text("Classified 6 texts")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Download results (CSV)")).to_be_visible()


def test_a_copied_link_reopens_the_same_text_with_its_answer(page, app_url, browser):
    text = "Great food, rude staff."
    open_page(page, app_url, "Language")
    _analyse(page, text)
    expect(page.get_by_text("Sentiment: mixed")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Copy link").click()
    link = page.get_by_test_id("stPopoverBody").locator("code").first
    expect(link).to_contain_text("?text=")
    url = link.inner_text().strip()
    assert url.startswith(app_url), url
    # A second visitor (fresh context, no session) opens the link: same text, answered at once.
    other = browser.new_context()
    try:
        visitor = other.new_page()
        visitor.goto(url)
        wait_for_idle(visitor)
        expect(visitor.get_by_label("Text to analyse")).to_have_value(text, timeout=60_000)
        expect(visitor.get_by_text("Sentiment: mixed")).to_be_visible(timeout=60_000)
    finally:
        other.close()
