"""The home page in a real browser: every task's self-test answers."""

from playwright.sync_api import expect

from tests.e2e.browser import open_page


def test_home_page_shows_all_four_self_tests(page, app_url):
    open_page(page, app_url)
    expect(page.get_by_text("Live self-test")).to_be_visible()
    # One success box per task; each loads a real model and answers a bundled example.
    successes = page.get_by_test_id("stAlertContentSuccess")
    expect(successes).to_have_count(4, timeout=180_000)
    for title in ("Try Vision", "Try Language", "Try Speech", "Try Recommendation"):
        expect(page.get_by_text(title)).to_be_visible()
    expect(page.get_by_text("Something went wrong")).to_have_count(0)


def test_model_cards_page_lists_every_model(page, app_url):
    open_page(page, app_url, "Model_cards")
    for tab in ("Vision", "Language", "Speech", "Recommendation"):
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    expect(page.get_by_text("Published references").first).to_be_visible()
