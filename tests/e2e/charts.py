"""Readability of the charts a page shows: each has a plotting area of real height and marks that use it.

Streamlit draws Altair charts with Vega as SVG. The root group's background path is the plotting
area; every `.role-mark` group holds the drawn marks. A chart squashed into a strip has a short
plotting area; a chart whose data collapsed into a flat line has marks spanning almost no height.
"""

from __future__ import annotations

MIN_PLOT_HEIGHT_PX = 120
MIN_MARK_SPAN = 0.10  # marks must span at least this share of the plotting height

_MEASURE = """
el => {
  const svg = el.querySelector('svg.marks');
  if (!svg) return null;
  const frame = svg.querySelector('.role-frame.root path.background') || svg.querySelector('path.background');
  const plot = frame ? frame.getBBox() : svg.getBBox();
  let count = 0, top = Infinity, bottom = -Infinity;
  svg.querySelectorAll('.role-mark').forEach(group => {
    if (!group.childElementCount || group.classList.contains('role-axis')) return;
    if (group.classList.contains('mark-text')) return;  // labels are not data
    // On-screen boxes: getBBox() is in each group's own coordinates, and Vega puts some marks (bars
    // with rounded ends) in one translated group per bar, which all read y = 0 there.
    const box = group.getBoundingClientRect();
    if (!box.height && !box.width) return;
    count += group.childElementCount;
    top = Math.min(top, box.top);
    bottom = Math.max(bottom, box.bottom);
  });
  return {plotHeight: plot.height, plotWidth: plot.width, marks: count, markSpan: count ? bottom - top : 0};
}
"""


def wait_for_charts(page, count: int, timeout_ms: int = 30_000) -> None:
    """Wait until `count` charts have an SVG: Streamlit mounts them after the text around them."""
    page.wait_for_function(
        "n => document.querySelectorAll(\"[data-testid='stVegaLiteChart'] svg.marks\").length >= n",
        arg=count,
        timeout=timeout_ms,
    )


def measure_charts(page) -> list[dict]:
    """One measurement per visible chart on the page."""
    charts = page.locator("[data-testid='stVegaLiteChart']")
    found = []
    for index in range(charts.count()):
        chart = charts.nth(index)
        if not chart.is_visible():
            continue
        chart.scroll_into_view_if_needed()
        measured = None
        for _ in range(15):  # Vega draws asynchronously: give a chart up to 3 s to put its marks down
            page.wait_for_timeout(200)
            measured = chart.evaluate(_MEASURE)
            if measured is not None and measured["marks"] > 0:
                break
        if measured is not None:
            found.append({"index": index, **measured})
    return found


def unreadable(measurements: list[dict]) -> list[str]:
    """Why each unreadable chart fails (empty when every chart is readable)."""
    problems = []
    for m in measurements:
        if m["plotHeight"] < MIN_PLOT_HEIGHT_PX:
            problems.append(f"chart {m['index']}: plotting area {m['plotHeight']:.0f} px high")
        elif m["marks"] == 0:
            problems.append(f"chart {m['index']}: no marks drawn")
        elif m["markSpan"] < MIN_MARK_SPAN * m["plotHeight"]:
            problems.append(
                f"chart {m['index']}: marks span {m['markSpan']:.0f} of {m['plotHeight']:.0f} px (flat)"
            )
    return problems
