"""Navigation by st.navigation keeps every URL and page name, from the very first visit after a start
(a first visit to /Vision used to get Streamlit's legacy pages/ sidebar, with the home page as "app")."""

from __future__ import annotations

from playwright.sync_api import expect

from pages.ui.navigation import PAGES
from tests.e2e.browser import open_page


def test_every_url_opens_its_page_with_the_same_sidebar(page, app_url):
    names = [entry.title for entry in PAGES]
    # Deliberately a page URL first: this file's server has not served app.py to anyone yet.
    for entry in sorted(PAGES, key=lambda e: e.url_path == ""):
        open_page(page, app_url, entry.url_path)
        assert page.url.rstrip("/") == f"{app_url}/{entry.url_path}".rstrip("/"), page.url
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav).to_be_visible(timeout=30_000)
        links = [text.strip() for text in nav.locator("a").all_inner_texts()]
        assert [link.split("\n")[-1].strip() for link in links] == names, links
        expect(nav.get_by_text("app", exact=True)).to_have_count(0)
        expect(page.locator("h1").first).to_be_visible()
