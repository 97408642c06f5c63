"""Shared Streamlit building blocks for the pages (this folder is not itself a page).

Streamlit's legacy multipage discovery only picks up `pages/*.py`, so helpers live one level down.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

import streamlit as st

from services.client import get_service
from services.device import device_summary
from services.errors import InputError
from services.tasks import NlpApi, RecommendApi, SpeechApi, VisionApi

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


@st.cache_resource(show_spinner="Loading model…")
def cached_service(task: str) -> Any:
    """The task's service (in-process or the REST API client, see services.client), one per server.

    Services are immutable after load, so sharing one instance across sessions is safe. Pages use the
    typed accessors below (`vision_service()`, ...), so that an editor follows a call to the contract.
    """
    return get_service(task)


# One typed accessor per task: `vision_service().predict` is `VisionApi.predict` to an editor and a
# type checker (services/tasks.py), whichever backend answers.
def vision_service() -> VisionApi:
    return cached_service("vision")


def speech_service() -> SpeechApi:
    return cached_service("speech")


def nlp_service() -> NlpApi:
    return cached_service("nlp")


def recommend_service() -> RecommendApi:
    return cached_service("recommend")


def start_model_loading() -> None:
    """Begin loading every in-process model in the background (once per server; see services.preload)."""
    from services.client import backend

    if backend() == "inprocess":
        from services.preload import start_background_loading

        start_background_loading()


def backend_status(task: str) -> dict:
    """{"state": "waiting" | "loading" | "ready" | "failed", ...} of the task's model on this backend."""
    from services.client import task_status

    return task_status(task)


@st.cache_data(ttl=120, show_spinner=False)
def self_test_result(task: str) -> dict:
    """The task's self-test ({"input", "output", "latency_ms"} or {"error"}), shared by every session
    for two minutes: a room full of people opening the home page runs it once, not once each."""
    try:
        return cached_service(task).self_test()
    except Exception as err:  # noqa: BLE001 - the home page shows a failed card, never a traceback
        logger.exception("self-test of %s failed", task)
        return {"error": f"{type(err).__name__}: {err}"}


_in_flight = 0
_in_flight_lock = threading.Lock()
BUSY_AT = max(1, (os.cpu_count() or 2) // 2)  # requests running at once before a newcomer waits


# Keyed on (task, method name, arguments, options): the service itself (`_method`'s owner) is not
# hashed, Streamlit skips parameters whose name starts with "_".
@st.cache_data(max_entries=512, ttl=3600, show_spinner=False)
def _cached_result(
    task: str, method_name: str, args: tuple, options: tuple, _method: Callable[..., Any]
) -> Any:
    global _in_flight
    with _in_flight_lock:
        _in_flight += 1
        waiting = _in_flight - BUSY_AT
    note = st.empty()
    if waiting > 0:
        note.caption(
            f":material/hourglass_top: Busy: {waiting} other request{'s' if waiting > 1 else ''} "
            "ahead of yours; it will be answered in a moment."
        )
    try:
        return _method(*args, **dict(options))
    finally:
        note.empty()
        with _in_flight_lock:
            _in_flight -= 1


def cached(method: Callable[P, R]) -> Callable[P, R]:
    """`method` (a service's bound method) answered once per distinct input: the same upload, text or
    ratings with the same options (hashed by Streamlit) is answered from the cache, for this session
    and every other one. The wrapper keeps the method's signature, so
    `cached(vision_service().predict)(data, explain=True)` is checked against `VisionApi.predict`.

    Input errors are raised, not cached, so a corrected input is simply tried again.
    """
    owner = getattr(method, "__self__", None)
    task = getattr(owner, "task", None)
    if task is None:
        raise TypeError(f"cached() takes a service's bound method, not {method!r}")
    method_name = method.__name__

    @functools.wraps(method)
    def call(*args: P.args, **options: P.kwargs) -> R:
        return _cached_result(task, method_name, args, tuple(sorted(options.items())), method)

    return call


CHART_MIN_HEIGHT = 120  # px of plotting area every chart gets (tests/e2e check it on desktop and phone)
AXES_PX = 80  # Streamlit fits a chart's axes inside the height it is given
LEGEND_BELOW_PX = 110  # a legend below the x axis title: measured 152 px for axes and legend together


def chart_height(plot_px: int = CHART_MIN_HEIGHT, legend: bool = False) -> int:
    """The height to give a chart so that its plotting area is at least `plot_px` (and 120 px)."""
    return max(plot_px, CHART_MIN_HEIGHT) + AXES_PX + (LEGEND_BELOW_PX if legend else 0)


def device_badge() -> None:
    """A plain-language badge ("Running on CPU"), with the technical details on hover."""
    device = device_summary()
    plain = f"Running on {device['kind']}"
    if device["kind"] == "GPU" and device["name"] != "GPU":
        plain += f" ({device['name'].removeprefix('NVIDIA ')})"
    st.markdown(f":material/memory: **{plain}**", help=f"Device: {device['details']}")


def setup_page(title: str, icon: str, intro: str, intro_as_text: bool = False) -> None:
    """Page config, title with the device badge, and a one-paragraph introduction
    (body text where it is the page's purpose, as on Home; a caption elsewhere)."""
    st.set_page_config(page_title=f"{title} · AI demo", page_icon=icon, layout="wide")
    heading, badge = st.columns([4, 1.4], vertical_alignment="bottom")
    heading.title(f"{icon} {title}")
    with badge:
        device_badge()
    (st.markdown if intro_as_text else st.caption)(intro)


@contextlib.contextmanager
def user_facing_errors(action: str = "processing your input") -> Iterator[None]:
    """Show bad input as a friendly warning and unexpected failures as a short error, never a traceback."""
    try:
        yield
    except InputError as err:
        st.warning(str(err), icon=":material/error:")
    except Exception as err:  # noqa: BLE001 - the page must never show a traceback
        if _is_api_failure(err):  # the HTTP backend is down or failed: say so, it is not the input
            logger.warning("API backend failed while %s: %s", action, err)
            st.error(f"The model server could not answer: {err}", icon=":material/cloud_off:")
            return
        logger.exception("unexpected failure while %s", action)
        st.error(
            f"Something went wrong while {action}. The error has been logged; please try another input.",
            icon=":material/report:",
        )


def _is_api_failure(err: Exception) -> bool:
    http_client = sys.modules.get("services.http_client")  # loaded only on the HTTP backend
    return http_client is not None and isinstance(err, http_client.ApiUnavailableError | http_client.ApiError)


def confidence_bars(top_k: Sequence[dict], label_field: str = "label", score_field: str = "score") -> None:
    """Horizontal bars of class probabilities, highest first.

    The chart is a Vega-Lite spec written as plain data. Built with Altair, the same chart validated
    each encoding against the Vega-Lite JSON schema, which was about two thirds of the server's CPU for
    showing a vision result (py-spy); the spec is fixed here and its rendering is covered by the chart
    tests (tests/e2e/test_charts_e2e.py).
    """
    rows = [{"class": str(row[label_field]), "confidence": float(row[score_field])} for row in top_k]
    spec = {
        "data": {"values": rows},
        "mark": {"type": "bar", "cornerRadiusEnd": 4},
        "encoding": {
            "x": {
                "field": "confidence",
                "type": "quantitative",
                "scale": {"domain": [0, 1]},
                "axis": {"format": "%"},
            },
            "y": {"field": "class", "type": "nominal", "sort": "-x", "title": None},
            "color": {
                "field": "confidence",
                "type": "quantitative",
                "scale": {"scheme": "purples", "domain": [0, 1]},
                "legend": None,
            },
            "tooltip": [
                {"field": "class", "type": "nominal"},
                {"field": "confidence", "type": "quantitative", "format": ".2%"},
            ],
        },
        "height": chart_height(28 * len(rows)),
    }
    st.vega_lite_chart(spec=spec, width="stretch")


def latency_caption(latency_ms: float) -> None:
    from services.device import device_badge_text

    st.caption(f":material/timer: {latency_ms:.1f} ms on `{device_badge_text()}`")


def _shareable(value: Any, depth: int = 0) -> Any:
    """The result as JSON a person can paste: long arrays (waveforms, heat maps) are summarised."""
    if isinstance(value, dict):
        return {str(k): _shareable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) > 64 or (depth > 2 and value and isinstance(value[0], list | tuple)):
            return f"[{len(value)} values: open the page to see them]"
        return [_shareable(v, depth + 1) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _shareable(value.tolist(), depth)
    return value


def shared_input(name: str) -> str | None:
    """The value a shared link carries for this page's input (see result_actions), if any."""
    value = st.query_params.get(name)
    return value if isinstance(value, str) and value.strip() else None


def result_actions(result: dict, share: dict[str, str] | None = None, key: str = "result") -> None:
    """ "Copy link" (reopens this page with the same input) and "Copy result" (the JSON) under a result.

    `share` holds the query parameters that reproduce the input (text, ratings, a bundled example);
    uploads and recordings cannot travel in a link, and the popover says so.
    """
    import json
    from urllib.parse import urlencode

    # Sized to their labels in a row that wraps: fixed columns in a narrow column (the Speech page's)
    # shrank them to unlabelled icons.
    row = st.container(horizontal=True, key=f"{key}_share_buttons")
    with row.popover("Copy link", icon=":material/link:", width="content"):
        if share:
            st.query_params.from_dict(share)  # the address bar now reopens this input too
            base = (st.context.url or "").split("?", 1)[0]
            st.caption("Opens this page with the same input:")
            st.code(f"{base}?{urlencode(share)}", language=None, wrap_lines=True)
        else:
            st.caption("An upload or a recording cannot travel in a link; copy the result instead.")
    with row.popover("Copy result", icon=":material/content_copy:", width="content"):
        st.code(
            json.dumps(_shareable(result), indent=2, ensure_ascii=False),
            language="json",
            height=300,
        )


PHONE_MAX_WIDTH_PX = 640  # Streamlit stacks columns below this width: the inputs then fill the first screen

# A fixed script (nothing from the visitor is put into it): on a narrow screen, bring the element with
# Streamlit's class for the container key into view. It runs in the component's iframe, which shares the
# page's origin (st.iframe of an HTML string), so it can reach the page; on a wide screen it does nothing.
_SCROLL_SCRIPT = """<script>
const page = window.parent;
if (page.innerWidth <= %(max_width)d) {
  const target = page.document.querySelector(".st-key-%(key)s");
  if (target) {
    target.style.scrollMarginTop = "4rem";  // clear of Streamlit's fixed header bar
    target.scrollIntoView({block: "start"});
  }
}
</script><!-- %(token)s -->"""


def scroll_into_view_on_phone(key: str, token: str) -> None:
    """On a phone, scroll to the container made with `st.container(key=key)` once per new result.

    Streamlit redraws a component only when its HTML changes, so `token` (something that identifies the
    result, e.g. its input) makes a new result scroll once and a rerun of the same result stay put.
    `key` is the page's own constant: letters, digits, '-' and '_' only.
    """
    import hashlib

    if not key.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"container key {key!r} is not a plain name")
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    st.iframe(_SCROLL_SCRIPT % {"max_width": PHONE_MAX_WIDTH_PX, "key": key, "token": digest}, height=1)
