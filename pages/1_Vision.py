"""Vision: read a handwritten or printed number (one digit or up to 12) from a photo, the camera or a drawing."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pages.ui import (
    cached,
    confidence_bars,
    latency_caption,
    result_actions,
    scroll_into_view_on_phone,
    setup_page,
    shared_input,
    user_facing_errors,
    vision_service,
)
from pages.ui.drawing import CANVAS_TOOLBAR_PX, canvas_buttons, canvas_key, drawing_state, initial_drawing
from services.vision import (
    FORMAT_NAMES,
    LOW_CONFIDENCE_BELOW,
    MAX_BATCH,
    MAX_DIGITS,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    UPLOAD_EXTENSIONS,
    example_inputs,
    preview_rgb,
)

MAX_FILES = 200  # uploads per batch on this page (each still limited by the service)
BOX_COLOUR = (124, 58, 237)  # the theme's violet, readable on paper and on dark boards
# The canvas is a fixed number of pixels wide: the phone size fits a 390 px screen, the wide one
# leaves room for a phone number on a laptop.
CANVAS_SIZES = {"Phone width": (340, 170), "Wide": (680, 200)}

setup_page(
    "Vision: digits and numbers",
    "🔢",
    "A small convolutional network trained by this project on MNIST reads handwritten or printed "
    f"numbers, from one digit up to {MAX_DIGITS}. Upload photos or scans, take a photo, draw, or click an example.",
)

service = vision_service()

with st.expander("About this model and its limits", icon=":material/info:"):
    info = service.info()
    accuracy = info["metrics"].get("accuracy")
    numbers = info["metrics"].get("numbers", {})
    number_kinds = [
        (kind, numbers[kind]) for kind in ("handwritten_photo", "printed_photo", "canvas") if kind in numbers
    ]
    number_line = ", ".join(
        f"{figures['exact_match']:.1%} of {figures['n']} {kind.replace('_', ' ')}s"
        for kind, figures in number_kinds
    )
    st.markdown(
        f"""
- **Model.** {info["architecture"]}; {info["parameters"]:,} parameters, trained from scratch in PyTorch.
- **Data.** {info["training"]}. Augmentation (scale, shift, rotation, shear, thicker and thinner
  strokes, blur, contrast, noise, JPEG artefacts) prepares it for photos, print and canvas strokes.
- **Accuracy.** {f"{accuracy:.2%}" if accuracy else "n/a"} on {info["metrics"].get("dataset", "MNIST test")}
  digits, one per image (`{info["metrics"].get("command", "")}`).
- **Whole numbers, away from the benchmark.** Read exactly right (every digit, none missing or extra):
  {number_line or "not measured"}. These numbers are composed from MNIST *test* digits and rendered
  as phone photos, printed labels and canvas strokes (`{numbers.get("generated_by", "")}`); digits that
  touch are the usual miss.

**What happens to your image.** It is decoded (EXIF rotation, HEIC from iPhones, transparency, 16-bit
and CMYK handled), the ink is found automatically whether it is dark on light or light on dark, and
uneven lighting is removed. The digits are then found one by one: broken strokes are joined, specks,
dots and ruled lines are ignored, a tilted line is straightened, and digits that touch are cut where
the network reads the pieces best. Each digit is fitted into 20×20 pixels and centred in a 28×28
square, the way MNIST was made: that square is the *model's-eye view*; the heat map (Grad-CAM) shows
which regions drove the answer. All digits go through the network in one batch.

**Limits.** Digits only, on one line, up to {info["limits"]["max_digits"]}: letters, signs and
decimal points are ignored or read as digits (a low confidence is flagged). Very small digits in a large
photo, heavy clutter, or ink with little contrast may fail: crop to the number. Files up to
{info["limits"]["max_upload_bytes"] / 2**20:.0f} MB and {info["limits"]["max_pixels"] / 1e6:.0f}
megapixels; animated images use their first frame.
"""
    )


def _scaled(image: np.ndarray, factor: int = 6) -> np.ndarray:
    """Nearest-neighbour upscale so 28×28 pixels stay crisp on screen."""
    return np.repeat(np.repeat(np.asarray(image, dtype=np.float32), factor, axis=0), factor, axis=1)


def _overlay(model_input: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """Grad-CAM heat (transparent → red → yellow) over the grey model input, as RGB in [0, 1]."""
    grey = np.repeat(model_input[..., None], 3, axis=2) * 0.55
    heat = np.stack(
        [np.clip(saliency * 2, 0, 1), np.clip(saliency * 2 - 1, 0, 1), np.zeros_like(saliency)], -1
    )
    alpha = np.clip(saliency, 0, 1)[..., None] * 0.8
    return np.clip(grey * (1 - alpha) + heat * alpha, 0, 1)


def _canvas_picture(rgba: np.ndarray) -> np.ndarray:
    """The canvas's RGBA strokes on white, as the picture to draw the boxes on."""
    rgba = np.asarray(rgba, dtype=np.float32)
    alpha = rgba[..., 3:4] / 255
    return (rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)


def _boxed(picture: np.ndarray, result: dict) -> Image.Image:
    """The picture with a box, the digit and its confidence over every digit read."""
    image = Image.fromarray(picture).convert("RGB")
    width, height = result["size"]
    sx, sy = image.width / width, image.height / height
    line = max(2, round(min(image.size) / 150))
    font = ImageFont.load_default(size=max(12, round(min(image.size) / 22)))  # readable when scaled down
    draw = ImageDraw.Draw(image)
    for digit in result["digits"]:
        x0, y0, x1, y1 = digit["box"]
        box = (x0 * sx - line, y0 * sy - line, x1 * sx + line, y1 * sy + line)
        draw.rectangle(box, outline=BOX_COLOUR, width=line)
        text = f"{digit['label']} {digit['confidence']:.0%}"
        height = draw.textbbox((0, 0), text, font=font)[3]
        left, top = box[0], max(0, box[1] - height - 4 - line)
        tb = draw.textbbox((left, top), text, font=font)
        draw.rectangle((tb[0] - 2, tb[1] - 2, tb[2] + 2, tb[3] + 2), fill=BOX_COLOUR)
        draw.text((left, top), text, fill=(255, 255, 255), font=font)
    return image


def show_result(result: dict, picture: np.ndarray | None, key: str) -> None:
    """The number in large type, the boxes over the picture, and each digit's view on selection."""
    digits = result["digits"]
    kind = "digit" if len(digits) == 1 else f"number ({len(digits)} digits)"
    st.subheader(f"Predicted {kind.split(' ')[0]}: {result['label']}", anchor=f"vision-result-{key}")
    # Large type for the number read, in Markdown (no raw HTML); a 12-digit number still fits a phone.
    st.markdown(f"# {' '.join(result['label']) if len(result['label']) > 8 else result['label']}")
    st.caption(f"Confidence of the whole {kind}: {result['confidence']:.1%}")
    if result["low_confidence"]:
        st.warning(
            f"Check this number ({result['confidence']:.0%} confident): below {LOW_CONFIDENCE_BELOW:.0%}, numbers "
            "it had never seen were often misread. Compare the boxes with the picture.",
            icon=":material/help:",
        )
    for note in result.get("notes", []):
        st.info(note, icon=":material/info:")
    if picture is not None:
        st.image(_boxed(picture, result), caption="What was read, digit by digit", width="content")
    chosen = 0
    if len(digits) > 1:
        chosen = st.radio(
            "Digit to explain",
            range(len(digits)),
            # Numbered, so that two equal digits are two distinct choices.
            format_func=lambda i: f"#{i + 1}: {digits[i]['label']} ({digits[i]['confidence']:.0%})",
            horizontal=True,
            key=f"{key}_digit",
        )
    digit = digits[chosen or 0]
    bars, eye, cam = st.columns([1.3, 1, 1])
    with bars:
        position = f"digit {chosen + 1} of {len(digits)}: " if len(digits) > 1 else ""
        st.metric(f"{position}confidence", f"{digit['confidence']:.1%}")
        confidence_bars(digit["top_k"])
    model_input = np.asarray(digit["model_input"], dtype=np.float32)
    eye.image(_scaled(model_input), caption="Model's-eye view (28×28)", clamp=True, width="stretch")
    overlay = _overlay(model_input, np.asarray(digit["saliency"], dtype=np.float32))
    cam.image(_scaled(overlay), caption="Grad-CAM: what drove the answer", clamp=True, width="stretch")
    latency_caption(result["latency_ms"])
    polarity = "dark ink on light paper (inverted)" if result["inverted"] else "light ink on dark"
    source = "drawing" if result["format"] == "array" else result["format"]
    st.caption(f"Read as {polarity}; {source} {result['size'][0]}×{result['size'][1]}")


def read_upload(data: bytes, key: str) -> None:
    with user_facing_errors("reading your image"):
        result = cached(service.predict)(data, explain=True)
        show_result(result, preview_rgb(data), key)
        result_actions(result, key=key)


EXAMPLE_TILE_PX = 104  # gallery tile width: three to a row on a 390 px phone, many on a desktop


@st.cache_data(show_spinner=False)
def _thumbnail(path: str, side: int = 160) -> bytes:
    """A bundled example padded to a square with its own paper colour, so the gallery lines up.

    Encoded once as PNG bytes: an array would be re-encoded by st.image on every rerun of the page.
    """
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    corner = rgb.getpixel((0, 0))
    buffer = io.BytesIO()
    ImageOps.pad(rgb, (side, side), color=corner).save(buffer, format="PNG")
    return buffer.getvalue()


def batch_table(names: list[str], payloads: list[bytes]) -> None:
    with st.spinner(f"Reading {len(payloads)} images…"):
        results = []
        for start in range(0, len(payloads), MAX_BATCH):
            results += cached(service.predict_batch)(payloads[start : start + MAX_BATCH])
    rows = []
    for name, result in zip(names, results, strict=True):
        if "error" in result:
            rows.append(
                {"file": name, "label": None, "confidence": None, "error": result["error"]["message"]}
            )
            continue
        second = result["top_k"][1] if len(result["top_k"]) > 1 else {"label": None, "score": None}
        rows.append(
            {
                "file": name,
                "label": result["label"],
                "digits": len(result["digits"]),
                "confidence": result["confidence"],
                "runner_up": second["label"],
                "runner_up_confidence": second["score"],
                "latency_ms": result["latency_ms"],
                "error": None,
            }
        )
    table = pd.DataFrame(rows)
    # Whole numbers stay whole beside the rows that failed ("4", not "4.0", in the CSV too).
    table["digits"] = table.get("digits", pd.Series([None] * len(table))).astype("Int64")
    ok = int(table["error"].isna().sum())
    table["error"] = table["error"].fillna("")
    st.subheader(f"Results for {len(payloads)} images ({ok} recognised)")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "label": st.column_config.TextColumn("label"),
            "confidence": st.column_config.ProgressColumn(
                "confidence", min_value=0, max_value=1, format="%.3f"
            ),
            "runner_up_confidence": st.column_config.NumberColumn("runner-up confidence", format="%.3f"),
            "runner_up": st.column_config.TextColumn("runner-up"),
            "latency_ms": st.column_config.NumberColumn("latency", format="%.1f ms"),
            "error": st.column_config.TextColumn("error", width="large"),
        },
    )
    for failed in table[table["error"] != ""].itertuples():  # the whole message, not cut by the table
        st.caption(f":material/error: **{failed.file}**: {failed.error}")
    st.download_button(
        "Download results as CSV",
        table.to_csv(index=False).encode(),
        file_name="number_predictions.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    choice = st.selectbox("Show details for", range(len(names)), format_func=lambda i: names[i])
    if choice is not None:
        read_upload(payloads[choice], key="upload_detail")


TAB_LABELS = (
    ":material/upload: Upload",
    ":material/photo_camera: Camera",
    ":material/draw: Draw",
    ":material/photo_library: Examples",
)
# Only the open tab runs: the drawing canvas (a component the browser must fetch) and the gallery's
# thumbnails are sent only to visitors who open those tabs, which cut the server's CPU per visitor
# flow by about a quarter (make loadtest-ui). A shared link to an example opens on the gallery.
upload_tab, camera_tab, draw_tab, examples_tab = st.tabs(
    list(TAB_LABELS),
    default=TAB_LABELS[3] if shared_input("example") else None,
    on_change="rerun",
    key="vision_tab",
)


@st.fragment
def upload_section() -> None:
    """Uploads rerun only this tab, not the gallery and the rest of the page."""
    files = st.file_uploader(
        f"Photos or scans of digits or numbers ({FORMAT_NAMES}; up to {MAX_UPLOAD_BYTES / 2**20:.0f} MB "
        f"and {MAX_PIXELS / 1e6:.0f} megapixels each). Several files give a table.",
        type=list(UPLOAD_EXTENSIONS),
        accept_multiple_files=True,
        key="vision_upload",
    )
    files = list(files or [])[:MAX_FILES]
    if len(files) == 1:
        read_upload(files[0].getvalue(), key="upload")
    elif len(files) > 1:
        with user_facing_errors("reading your images"):
            batch_table([f.name for f in files], [f.getvalue() for f in files])
    else:
        st.caption("Tip: a photo works best with the number filling a good part of the picture, on one line.")


if upload_tab.open:
    with upload_tab:
        upload_section()


@st.fragment
def camera_section() -> None:
    """The camera reruns only this tab."""
    # The browser asks for the camera only once this is switched on, not whenever the page opens.
    if st.toggle("Use the camera", key="vision_camera_on", help="Phones use the back or front camera"):
        shot = st.camera_input("Take a photo", key="vision_camera")
        if shot is not None:
            photo = shot.getvalue()
            with st.container(key="vision_result_camera"):
                read_upload(photo, key="camera")
                # The answer lands below the camera's viewfinder, off a phone's screen: bring it up, once per photo.
                scroll_into_view_on_phone("vision_result_camera", f"camera:{zlib.crc32(photo)}")
        else:
            st.caption("Hold the number flat and fill the frame with it, then take the photo.")
    else:
        st.caption("Switch on the camera to photograph a number: a house number, a meter, a note.")


if camera_tab.open:
    with camera_tab:
        camera_section()


@st.fragment
def draw_section() -> None:
    """Strokes rerun only this tab."""
    size_name = st.radio("Canvas", list(CANVAS_SIZES), horizontal=True, key="vision_canvas_size")
    width, height = CANVAS_SIZES[size_name]
    st.caption(
        "Write one digit or a whole number, side by side, with the mouse or a finger. Release to read it."
    )
    st.space(CANVAS_TOOLBAR_PX)  # the canvas's own toolbar pops up here, not over the line above
    try:
        from streamlit_drawable_canvas import st_canvas  # registers a component: import inside the page
    except Exception:  # noqa: BLE001 - the rest of the page works without the canvas
        st_canvas = None
        st.info("The drawing canvas is not available in this installation (streamlit-drawable-canvas).")
    if st_canvas is not None:
        canvas = st_canvas(
            stroke_width=14 if width < 500 else 16,
            stroke_color="#000000",
            background_color="#FFFFFF",
            height=height,
            width=width,
            drawing_mode="freedraw",
            return_image_data=True,
            initial_drawing=initial_drawing(),
            key=canvas_key(width),
        )
        drawing, drawn, picture = drawing_state(canvas)
        canvas_buttons(drawing, drawn)
        if drawn and picture is not None:
            with user_facing_errors("reading your drawing"):
                result = service.predict_array(picture, explain=True)
                show_result(result, _canvas_picture(picture), key="canvas")
        elif drawn:  # strokes on screen whose picture was not kept (over MAX_SNAPSHOTS undone)
            st.info("Add a stroke to read the drawing again.", icon=":material/draw:")
        else:
            st.info("Nothing drawn yet.", icon=":material/draw:")


if draw_tab.open:
    with draw_tab:
        draw_section()


@st.fragment
def examples_section() -> None:
    """A click on an example reruns only this tab."""
    examples = example_inputs()
    st.caption(
        "MNIST test digits, photo-like and printed renders, and canvas-style drawings bundled with the app "
        "(none of the renders or drawings were used in training). Click one to read it."
    )
    # A wrapping row of fixed-size tiles: a compact grid on a phone too (columns would stack into one
    # column several thousand pixels long).
    with st.container(horizontal=True, gap="small"):
        for example in examples:
            with st.container(width=EXAMPLE_TILE_PX, gap="small"):
                st.image(_thumbnail(example["path"]), width=EXAMPLE_TILE_PX)
                if st.button(
                    f"{'Digit' if len(example['label']) == 1 else 'Number'} {example['label']}",
                    key=f"example_{example['name']}",
                    help=example["description"],
                    width="stretch",
                ):
                    st.session_state["vision_example"] = example["name"]
                    st.session_state["vision_example_clicks"] = (
                        st.session_state.get("vision_example_clicks", 0) + 1
                    )
    chosen = st.session_state.get("vision_example") or shared_input("example")
    match = [e for e in examples if e["name"] == chosen]
    if match:
        example = match[0]
        st.markdown(
            f"**Example:** {example['description']} (true {'digit' if len(example['label']) == 1 else 'number'}: {example['label']})"
        )
        data = Path(example["path"]).read_bytes()
        # On a phone the gallery is taller than the screen: bring the answer up once per click.
        with st.container(key="vision_result_example"), user_facing_errors("reading the example"):
            result = cached(service.predict)(data, explain=True)
            show_result(result, preview_rgb(data), key="example")
            result_actions(result, share={"example": example["name"]}, key="example")
            token = f"example:{chosen}:{st.session_state.get('vision_example_clicks', 0)}"
            scroll_into_view_on_phone("vision_result_example", token)


if examples_tab.open:
    with examples_tab:
        examples_section()
