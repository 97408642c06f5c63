"""Helpers for driving the Streamlit app in Playwright."""

from __future__ import annotations

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect


def wait_for_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)


def open_page(page, app_url: str, path: str = "") -> None:
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
    wait_for_idle(page)


def upload(page, path, index: int = 0) -> None:
    """Upload a real file through the index-th file uploader and wait for the rerun."""
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(index).set_input_files(str(path))
    page.wait_for_timeout(300)
    wait_for_idle(page)


PHONE = {"width": 390, "height": 844}

# Elements wider than the screen, or scrolled sideways, anywhere on the page (not counting content
# inside a box that scrolls on its own, such as a table). The phone tests of every page use it.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const scrollers = [document.documentElement, document.body,
    ...document.querySelectorAll('[data-testid="stAppViewContainer"], [data-testid="stMain"], section.main')];
  const scrolled = scrollers.filter(e => e && e.scrollWidth > e.clientWidth + 1)
    .map(e => (e.getAttribute('data-testid') || e.tagName) + ' ' + e.scrollWidth + '>' + e.clientWidth);
  const wide = [...document.querySelectorAll('[data-testid="stMain"] *')].filter(e => {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) return false;
    let p = e.parentElement;
    while (p) { const s = getComputedStyle(p);
      if (['auto', 'scroll', 'hidden'].includes(s.overflowX) && p.scrollWidth > p.clientWidth) return false;
      p = p.parentElement; }
    return r.right > width + 1 || r.left < -1;
  }).slice(0, 5).map(e => e.tagName + '.' + (e.getAttribute('data-testid') || e.className));
  return {scrolled, wide};
}"""


def assert_no_sideways_scroll(page) -> None:
    found = page.evaluate(OVERFLOW_JS)
    assert not found["scrolled"] and not found["wide"], found


def expect_no_sideways_scroll(page, timeout_ms: int = 10_000) -> None:
    """`assert_no_sideways_scroll`, retried until the layout settles or `timeout_ms` runs out (charts and
    images are drawn after the script run ends); then the last state is asserted, naming what overflows."""
    settled = (
        f"() => {{ const found = ({OVERFLOW_JS})(); return !found.scrolled.length && !found.wide.length; }}"
    )
    try:
        page.wait_for_function(settled, timeout=timeout_ms)
    except PlaywrightTimeoutError:
        pass  # the assertion below fails with the details
    assert_no_sideways_scroll(page)


_IN_UPPER_PART_JS = """([sel, upper]) => { const e = document.querySelector(sel); if (!e) return false;
                    const r = e.getBoundingClientRect(); return r.top >= -2 && r.top < upper * window.innerHeight; }"""


def expect_in_upper_part(page, selector: str, upper: float = 0.5, timeout_ms: int = 10_000) -> None:
    """Retrying: the top of the first element matching `selector` comes into the upper `upper` share of the
    screen within `timeout_ms` (the page scrolls to an answer once its frame has loaded, at its own pace)."""
    expect(page.locator(selector).first).to_be_in_viewport(timeout=timeout_ms)
    try:
        page.wait_for_function(_IN_UPPER_PART_JS, arg=[selector, upper], timeout=timeout_ms)
    except PlaywrightTimeoutError:
        where = page.evaluate(
            "(sel) => [document.querySelector(sel)?.getBoundingClientRect().top, window.scrollY, window.innerHeight]",
            selector,
        )
        raise AssertionError(
            f"{selector}: top at {where[0]} px (scrollY {where[1]}, screen {where[2]} px), not in the upper "
            f"{upper:.0%} of the screen after {timeout_ms} ms"
        ) from None


def in_viewport(page, selector: str, upper: float = 0.5) -> bool:
    """Whether the top of the first element matching `selector` is in the upper `upper` share of the
    screen: brought into view, not merely peeking in at the bottom."""
    return page.evaluate(_IN_UPPER_PART_JS, [selector, upper])


def draw_one(page, left: float, top: float, height: float) -> None:
    """A slightly slanted vertical stroke (a 1) drawn with the mouse at x = `left` on a canvas whose
    top and height are given, then released so the canvas sends it."""
    page.mouse.move(left, top + height * 0.15)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(left + step * 0.5, top + height * (0.15 + 0.07 * step))
    page.mouse.up()
    page.wait_for_timeout(400)
