"""Shared Streamlit building blocks for the pages (this folder is not itself a page).

Streamlit's legacy multipage discovery only picks up `pages/*.py`, so helpers live one level down.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import altair as alt
import pandas as pd
import streamlit as st

from services.device import device_badge_text
from services.errors import InputError

logger = logging.getLogger(__name__)


@st.cache_resource(show_spinner="Loading model…")
def cached_service(task: str):
    """The task's service (in-process or the REST API client, see services.client), one per server.

    `task` is a name in services.registry.TASK_MODULES (vision, speech, nlp, recommend). Services are
    immutable after load, so sharing one instance across sessions is safe.
    """
    from services.client import get_service

    return get_service(task)


def run_self_test(task: str) -> dict:
    """The task's live self-test on a bundled example: {"input", "output", "latency_ms"}."""
    return cached_service(task).self_test()


def setup_page(title: str, icon: str, intro: str) -> None:
    """Page config, title with the device badge, and a one-paragraph introduction."""
    st.set_page_config(page_title=f"{title} · AI demo", page_icon=icon, layout="wide")
    heading, badge = st.columns([4, 1.4], vertical_alignment="bottom")
    heading.title(f"{icon} {title}")
    badge.markdown(f":material/memory: **Device** &nbsp; `{device_badge_text()}`")
    st.caption(intro)


@contextlib.contextmanager
def user_facing_errors(action: str = "processing your input") -> Iterator[None]:
    """Show bad input as a friendly warning and unexpected failures as a short error, never a traceback."""
    try:
        yield
    except InputError as err:
        st.warning(str(err), icon=":material/error:")
    except Exception:  # noqa: BLE001 - the page must never show a traceback
        logger.exception("unexpected failure while %s", action)
        st.error(
            f"Something went wrong while {action}. The error has been logged; please try another input.",
            icon=":material/report:",
        )


def confidence_bars(top_k: Sequence[dict], label_field: str = "label", score_field: str = "score") -> None:
    """Horizontal bars of class probabilities, highest first."""
    frame = pd.DataFrame(
        {
            "class": [str(row[label_field]) for row in top_k],
            "confidence": [float(row[score_field]) for row in top_k],
        }
    )
    chart = (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=4)
        .encode(
            x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("class:N", sort="-x", title=None),
            color=alt.Color("confidence:Q", scale=alt.Scale(scheme="purples", domain=[0, 1]), legend=None),
            tooltip=["class", alt.Tooltip("confidence:Q", format=".2%")],
        )
        .properties(height=alt.Step(26))
    )
    st.altair_chart(chart, width="stretch")


def latency_caption(latency_ms: float) -> None:
    st.caption(f":material/timer: {latency_ms:.1f} ms on `{device_badge_text()}`")
