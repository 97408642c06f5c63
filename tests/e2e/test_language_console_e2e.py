"""Issue 32: each Language result logged two Vega warnings ("Infinite extent for field
contribution_start / contribution_end") in the browser console."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.browser import open_page, wait_for_idle


def test_a_sentiment_result_logs_no_vega_warning(page, app_url):
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    open_page(page, app_url, "Language")
    page.get_by_label("Text to analyse").fill("The soup was cold, the waiter rude, but the view was lovely.")
    page.get_by_role("button", name="Analyse sentiment").click()
    wait_for_idle(page)
    expect(page.get_by_text("Sentiment:").first).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
    page.wait_for_timeout(1500)  # the charts finish drawing
    vega = [m for m in messages if "Infinite extent" in m or "WARN" in m]
    assert not vega, vega
