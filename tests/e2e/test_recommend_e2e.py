"""Browser test: rate three movies on the Recommendation page and see explained recommendations."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.browser import open_page, wait_for_idle


def _pick(page, title: str) -> None:
    box = page.get_by_test_id("stMultiSelect").first.locator("input")
    box.click()
    box.fill(title)
    page.get_by_role("option", name=title).first.click()
    page.keyboard.press("Escape")
    wait_for_idle(page)


def test_rate_three_movies_then_recommendations_appear(page, app_url):
    open_page(page, app_url, "Recommendation")
    expect(page.get_by_text("Pick and rate at least one movie")).to_be_visible()
    for title in ("Star Wars (1977)", "Toy Story (1995)", "Fargo (1996)"):
        _pick(page, title)
    expect(page.get_by_text("Recommended for you")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Because you rated").first).to_be_visible()
    expect(page.get_by_text("Fold-in (solving your taste vector)")).to_be_visible()
    expect(page.get_by_text("Pick and rate at least one movie")).to_have_count(0)
