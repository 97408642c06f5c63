"""The Vision page's drawing canvas: Clear and Undo beside each other, and the pictures Undo needs.

The canvas (streamlit-drawable-canvas) keeps its strokes per widget key, so Clear and Undo mount a
fresh canvas under a new key, Undo with every stroke but the last as its initial drawing. Its own
toolbar (upload, undo, redo, edit, reset) cannot be switched off and pops up 2.65 rem above the
canvas on hover and on touch screens, so the page leaves CANVAS_TOOLBAR_PX free there.
"""

from __future__ import annotations

import io

import numpy as np
import streamlit as st
from PIL import Image

MAX_SNAPSHOTS = 64  # strokes of one drawing whose pictures are kept for Undo (a few kB each, PNG)
CANVAS_TOOLBAR_PX = 44  # the toolbar's 2.65 rem (42 px) above the canvas, and a little air


def canvas_key(width: int) -> str:
    return f"vision_canvas_{width}_{st.session_state.get('vision_canvas_rev', 0)}"


def initial_drawing() -> dict | None:
    return st.session_state.get("vision_canvas_initial")


def _remount_canvas() -> None:
    # A new key mounts a fresh canvas: the component keeps its strokes per key.
    st.session_state["vision_canvas_rev"] = st.session_state.get("vision_canvas_rev", 0) + 1
    st.session_state["vision_canvas_initial"] = None


def clear_canvas() -> None:
    _remount_canvas()
    st.session_state["vision_canvas_snapshots"] = {}


def undo_stroke(drawing: dict) -> None:
    # The canvas's own undo sits in a toolbar that phones show only on hover: redraw all but the
    # last stroke instead, as the initial drawing of a freshly mounted canvas.
    objects = list(drawing.get("objects") or [])
    if len(objects) <= 1:
        clear_canvas()
        return
    _remount_canvas()
    st.session_state["vision_canvas_initial"] = {**drawing, "objects": objects[:-1]}


def _remember(count: int, image: np.ndarray) -> None:
    """Keep the picture the canvas sent with `count` strokes, for an Undo back to that many."""
    snapshots = st.session_state.setdefault("vision_canvas_snapshots", {})
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")  # lossless
    snapshots[count] = buffer.getvalue()
    for stale in sorted(snapshots)[:-MAX_SNAPSHOTS]:
        del snapshots[stale]


def _recalled(count: int) -> np.ndarray | None:
    data = st.session_state.get("vision_canvas_snapshots", {}).get(count)
    return None if data is None else np.asarray(Image.open(io.BytesIO(data)))


def drawing_state(canvas) -> tuple[dict, list | None, np.ndarray | None]:
    """(drawing, its strokes, the RGBA picture to read) from what the canvas sent this run."""
    drawing = (canvas.json_data if canvas is not None else None) or {}
    drawn = drawing.get("objects")
    picture = canvas.image_data if canvas is not None and drawn else None
    initial = initial_drawing()
    if drawn and picture is not None:
        _remember(len(drawn), picture)
    elif initial and initial.get("objects"):
        # After Undo the remounted canvas shows the remaining strokes, and lists them, but sends
        # no picture until the next stroke (seen in Chromium): read the picture it sent when it
        # last held that many strokes, which were these very strokes (Undo only ever takes the
        # last one away).
        if not drawn:
            drawing, drawn = initial, initial["objects"]
        picture = _recalled(len(drawn))
    return drawing, drawn, picture


def canvas_buttons(drawing: dict, drawn: list | None) -> None:
    """Clear and Undo side by side, under the canvas (a phone keeps them on one row too)."""
    with st.container(horizontal=True, key="vision_canvas_buttons"):
        st.button("Clear canvas", icon=":material/delete:", on_click=clear_canvas, key="vision_canvas_clear")
        st.button(
            "Undo last stroke",
            icon=":material/undo:",
            on_click=undo_stroke,
            args=(drawing,),
            disabled=not drawn,
            key="vision_canvas_undo",
        )
