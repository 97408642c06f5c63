"""Issue 32: on a 390 px phone the Model cards page cut the recommendation cost-curve legend to "t"
(the chart drew 480 px wide) and cut its tables inside their scroll boxes."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser import OVERFLOW_JS, open_page, wait_for_idle

# Each chart's drawing (canvas or svg) against the box Streamlit gives it, and each table's content
# against its own box: wider means cut off on screen.
WIDTHS_JS = """() => {
  const charts = [...document.querySelectorAll('[role="tabpanel"]:not([hidden]) [data-testid="stVegaLiteChart"]')]
    .map(chart => { const drawn = chart.querySelector('canvas, svg');
      return {drawn: drawn ? drawn.getBoundingClientRect().width : 0, box: chart.getBoundingClientRect().width}; });
  const tables = [...document.querySelectorAll('[role="tabpanel"]:not([hidden]) [data-testid="stTable"]')]
    .map(table => ({content: table.scrollWidth, box: table.clientWidth}));
  return {charts, tables};
}"""


def _ink_at_right_edge_of_legend(png: bytes, band: float = 0.3, edge_px: int = 8) -> int:
    """Pixels unlike the background in the last `edge_px` columns of the bottom `band` of a chart."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)  # (H, W, 3)
    height = pixels.shape[0]
    strip = pixels[int(height * (1 - band)) :, -edge_px:]
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return int((np.abs(strip - background).max(axis=2) > 60).sum())


def test_phone_cost_curves_and_tables_fit(phone, app_url):
    page = phone
    open_page(page, app_url, "Model_cards")
    page.get_by_role("tab", name=re.compile("Recommendation")).click()
    wait_for_idle(page)
    expect(page.get_by_text("Cost curve").first).to_be_visible(timeout=60_000)
    page.get_by_text("Cost curve").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # the charts finish drawing
    found = page.evaluate(WIDTHS_JS)
    assert len(found["charts"]) >= 2, found
    for chart in found["charts"]:
        assert 0 < chart["drawn"] <= chart["box"] + 1, found
    assert found["tables"], found
    for table in found["tables"]:
        assert table["content"] <= table["box"] + 1, found
    # The legends under the cost curves are drawn on a canvas: nothing may touch the chart's right edge
    # in the legend band (the old horizontal legend ran off it, cut to "t").
    for index in range(2):
        chart = page.locator('[role="tabpanel"]:not([hidden]) [data-testid="stVegaLiteChart"]').nth(index)
        chart.scroll_into_view_if_needed()
        assert _ink_at_right_edge_of_legend(chart.screenshot()) == 0, (
            f"chart {index}: legend cut at the right edge"
        )
    # Nothing is wider than the phone, the full model card's tables included (they were Markdown tables
    # laid out wider than the screen).
    page.get_by_text("Full model card").last.click()
    wait_for_idle(page)
    found = page.evaluate(OVERFLOW_JS)
    assert not found["scrolled"] and not found["wide"], found
