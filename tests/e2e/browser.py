"""Helpers for driving the Streamlit app in Playwright."""

from __future__ import annotations


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


def in_viewport(page, selector: str, upper: float = 0.5) -> bool:
    """Whether the top of the first element matching `selector` is in the upper `upper` share of the
    screen: brought into view, not merely peeking in at the bottom."""
    return page.evaluate(
        """([sel, upper]) => { const e = document.querySelector(sel); if (!e) return false;
                    const r = e.getBoundingClientRect(); return r.top >= -2 && r.top < upper * window.innerHeight; }""",
        [selector, upper],
    )


def draw_one(page, left: float, top: float, height: float) -> None:
    """A slightly slanted vertical stroke (a 1) drawn with the mouse at x = `left` on a canvas whose
    top and height are given, then released so the canvas sends it."""
    page.mouse.move(left, top + height * 0.15)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(left + step * 0.5, top + height * (0.15 + 0.07 * step))
    page.mouse.up()
    page.wait_for_timeout(400)
