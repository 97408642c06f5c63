"""Charts shared by the pages (Altair specs, no Streamlit calls), readable in the light and the dark theme."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from pages.ui import chart_height

# A mid-tone violet (Tailwind violet-500): 4.2:1 against white and 4.4:1 against the dark theme's
# background (#0F1117), where the earlier #4c1d95 was dark purple on near-black (1.6:1).
WAVE_COLOUR = "#8B5CF6"
PART_COLOUR = "#A78BFA"
HEADROOM = 1.1  # the amplitude axis reaches a little past the loudest sample
MIN_AMPLITUDE = 0.01  # a silent clip still gets an axis, not a zero-height one
ENVELOPE_BINS = 1200  # min/max pairs drawn: more than a screen's width in pixels


def amplitude_limit(wave: np.ndarray) -> float:
    """The ± limit of the amplitude axis: the loudest sample plus headroom, rounded up to 2 digits."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return max(MIN_AMPLITUDE, float(np.ceil(peak * HEADROOM * 100) / 100))


def waveform_chart(wave: np.ndarray, sample_rate: int, parts: list[tuple[float, float]]) -> alt.Chart:
    """Min/max envelope of the waveform, its axis scaled to the signal, with the detected parts shaded."""
    bins = max(1, min(ENVELOPE_BINS, wave.shape[0]))
    edges = np.linspace(0, wave.shape[0], bins + 1).astype(int)
    pairs = list(zip(edges[:-1], edges[1:], strict=True))
    low = np.array([wave[a:b].min() if b > a else 0.0 for a, b in pairs])
    high = np.array([wave[a:b].max() if b > a else 0.0 for a, b in pairs])
    frame = pd.DataFrame({"time (s)": edges[:-1] / sample_rate, "low": low, "high": high})
    regions = pd.DataFrame(
        [{"start": s, "end": e, "part": f"part {i + 1}"} for i, (s, e) in enumerate(parts)]
    )
    limit = amplitude_limit(wave)
    shade = (
        alt.Chart(regions)
        .mark_rect(opacity=0.22, color=PART_COLOUR)
        .encode(
            x=alt.X("start:Q", title="time (s)"),
            x2="end:Q",
            tooltip=["part", alt.Tooltip("start:Q", format=".2f"), alt.Tooltip("end:Q", format=".2f")],
        )
    )
    area = (
        alt.Chart(frame)
        .mark_area(color=WAVE_COLOUR)
        .encode(
            x=alt.X("time (s):Q"),
            y=alt.Y("low:Q", title="amplitude", scale=alt.Scale(domain=[-limit, limit])),
            y2="high:Q",
        )
    )
    return (shade + area).properties(height=chart_height())
