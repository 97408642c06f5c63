"""Issue 32: after `make run` alone (the launcher, nothing on port 8000) the API page's "Try it" answers
and its /docs link opens the interactive docs, because the REST API is mounted on the app's own port."""

from __future__ import annotations

import re
import urllib.request

from playwright.sync_api import expect

from tests.e2e.browser import open_page, wait_for_idle


def test_try_it_answers_and_docs_open_with_only_the_app_running(page, app_url):
    open_page(page, app_url, "API")
    expect(page.get_by_text("The API runs inside this app")).to_be_visible(timeout=60_000)
    docs = page.locator("a[href$='/api/docs']")
    href = docs.first.get_attribute("href")
    assert href == f"{app_url}/api/docs", href
    with urllib.request.urlopen(href, timeout=30) as response:
        assert response.status == 200 and b"swagger" in response.read().lower()
    page.get_by_role("button", name="Try it").click()
    wait_for_idle(page)
    expect(page.get_by_text(re.compile(r"^HTTP 200"))).to_be_visible(timeout=120_000)
