"""The home page in a real browser: it shows at once, every task's self-test answers, the sidebar
calls it Home, and both the light and the dark theme render."""

from playwright.sync_api import expect

from tests.e2e.browser import open_page


def test_home_page_shows_all_four_self_tests(page, app_url, readme_screenshots):
    open_page(page, app_url)
    expect(page.get_by_text("Live self-test")).to_be_visible()
    # One success box per task; each loads a real model and answers a bundled example.
    successes = page.get_by_test_id("stAlertContentSuccess")
    expect(successes).to_have_count(4, timeout=180_000)
    for title in ("Try Vision", "Try Language", "Try Speech", "Try Recommendation"):
        expect(page.get_by_text(title)).to_be_visible()
    expect(page.get_by_text("Something went wrong")).to_have_count(0)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Home", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("app", exact=True)).to_have_count(0)
    expect(page.get_by_text("Running on CPU").or_(page.get_by_text("Running on GPU"))).to_be_visible()
    page.screenshot(path=str(readme_screenshots / "home.png"), full_page=True)


def _background_luminance(page) -> float:
    rgb = page.evaluate("getComputedStyle(document.querySelector(\"[data-testid='stApp']\")).backgroundColor")
    red, green, blue = (int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_theme_follows_the_viewers_setting(browser, app_url, readme_screenshots):
    for scheme, dark in (("dark", True), ("light", False)):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        open_page(page, app_url)
        expect(page.get_by_text("Live self-test")).to_be_visible()
        luminance = _background_luminance(page)
        assert (luminance < 60) if dark else (luminance > 200), (scheme, luminance)
        if dark:
            page.screenshot(path=str(readme_screenshots / "home_dark.png"))
        context.close()


def test_model_cards_page_lists_every_model(page, app_url):
    open_page(page, app_url, "Model_cards")
    for tab in ("Vision", "Language", "Speech", "Recommendation"):
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    expect(page.get_by_text("Published references").first).to_be_visible()


def test_the_app_menu_switches_between_light_and_dark(browser, app_url):
    """Issue 32: an in-app light/dark switch, Streamlit's own (app menu → Light / Dark / System)."""
    context = browser.new_context(color_scheme="light", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        open_page(page, app_url)
        assert _background_luminance(page) > 200
        page.get_by_test_id("stMainMenu").click()
        page.get_by_role("menuitemradio", name="Dark").click()
        page.wait_for_timeout(500)
        assert _background_luminance(page) < 60
    finally:
        context.close()
