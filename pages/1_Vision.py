"""Vision: recognise a handwritten or printed digit from an upload, a drawing or a bundled example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageOps

from pages.ui import cached_service, confidence_bars, latency_caption, setup_page, user_facing_errors
from services.vision import MAX_BATCH, MAX_PIXELS, MAX_UPLOAD_BYTES, example_inputs

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
BROWSER_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP"}  # what we can show back as is
MAX_FILES = 200  # uploads per batch on this page (each still limited by the service)

setup_page(
    "Vision: digit recognizer",
    "🔢",
    "A small convolutional network trained by this project on MNIST reads one digit (0-9) per image. "
    "Upload photos or scans, draw on the canvas, or click an example.",
)


service = cached_service("vision")

with st.expander("About this model and its limits", icon=":material/info:"):
    info = service.info()
    accuracy = info["metrics"].get("accuracy")
    st.markdown(
        f"""
- **Model.** {info["architecture"]}; {info["parameters"]:,} parameters, trained from scratch in PyTorch.
- **Data.** {info["training"]}. Augmentation (scale, shift, rotation, shear, thicker and thinner
  strokes, blur, contrast, noise, JPEG artefacts) prepares it for photos, print and canvas strokes.
- **Accuracy.** {f"{accuracy:.2%}" if accuracy else "n/a"} on the 10,000 MNIST test digits.

**What happens to your image.** It is decoded (EXIF rotation, transparency, 16-bit and CMYK handled),
the ink is found automatically whether it is dark on light or light on dark, uneven lighting is
removed, the digit is cropped, fitted into 20×20 pixels and centred in a 28×28 square, the way MNIST
was made. That square is the *model's-eye view* shown next to each result; the heat map (Grad-CAM)
shows which regions drove the answer.

**Limits.** One digit per image: several digits, letters or drawings still get a digit as answer
(a low confidence is flagged). Very small digits in a large photo, heavy clutter, or ink with little
contrast may fail: crop to the digit. Files up to {info["limits"]["max_upload_bytes"] / 2**20:.0f} MiB and
{info["limits"]["max_pixels"] / 1e6:.0f} megapixels; animated images use their first frame.
"""
    )


def _scaled(image: np.ndarray, factor: int = 8) -> np.ndarray:
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


def show_result(result: dict, original: bytes | np.ndarray | None = None) -> None:
    """Headline, top-k bars, the model's-eye view, the Grad-CAM overlay, latency and device."""
    st.subheader(f"Predicted digit: {result['label']}")
    if result["low_confidence"]:
        st.warning(
            f"Low confidence ({result['confidence']:.0%}): this may not be a single clear digit.",
            icon=":material/help:",
        )
    for note in result.get("notes", []):
        st.info(note, icon=":material/info:")
    bars, views = st.columns([1, 1.4])
    with bars:
        st.metric("Confidence", f"{result['confidence']:.1%}")
        confidence_bars(result["top_k"])
        latency_caption(result["latency_ms"])
        polarity = "dark ink on light paper (inverted)" if result["inverted"] else "light ink on dark"
        source = "drawing" if result["format"] == "array" else result["format"]
        st.caption(f"Read as {polarity}; {source} {result['size'][0]}×{result['size'][1]}")
    with views:
        cols = st.columns(3 if original is not None else 2)
        if original is not None:
            cols[0].image(original, caption="Your image", width="stretch")
        eye_col, cam_col = cols[-2], cols[-1]
        digit = result["digits"][0]
        model_input = np.asarray(digit["model_input"], dtype=np.float32)
        eye_col.image(_scaled(model_input), caption="Model's-eye view (28×28)", clamp=True, width="stretch")
        overlay = _overlay(model_input, np.asarray(digit["saliency"], dtype=np.float32))
        cam_col.image(
            _scaled(overlay), caption="Grad-CAM: what drove the answer", clamp=True, width="stretch"
        )


@st.cache_data(show_spinner=False)
def _thumbnail(path: str, side: int = 160) -> np.ndarray:
    """A bundled example padded to a square with its own paper colour, so the gallery lines up."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    corner = rgb.getpixel((0, 0))
    return np.asarray(ImageOps.pad(rgb, (side, side), color=corner))


def _displayable(data: bytes, result: dict) -> bytes | None:
    return data if result.get("format") in BROWSER_FORMATS else None


upload_tab, draw_tab, examples_tab = st.tabs(
    [":material/upload: Upload", ":material/draw: Draw", ":material/photo_library: Examples"]
)

with upload_tab:
    files = st.file_uploader(
        f"Images of single digits (PNG, JPEG, WEBP, BMP, GIF, TIFF; up to {MAX_UPLOAD_BYTES / 2**20:.0f} MiB "
        f"and {MAX_PIXELS / 1e6:.0f} megapixels each). Several files give a table.",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key="vision_upload",
    )
    files = list(files or [])[:MAX_FILES]
    if len(files) == 1:
        data = files[0].getvalue()
        with user_facing_errors("reading your image"):
            result = service.predict(data, explain=True)
            show_result(result, _displayable(data, result))
    elif len(files) > 1:
        with user_facing_errors("reading your images"):
            payloads = [f.getvalue() for f in files]
            with st.spinner(f"Recognising {len(files)} images…"):
                results = []
                for start in range(0, len(payloads), MAX_BATCH):
                    results += service.predict_batch(payloads[start : start + MAX_BATCH])
            rows = []
            for upload, result in zip(files, results, strict=True):
                if "error" in result:
                    rows.append(
                        {
                            "file": upload.name,
                            "label": None,
                            "confidence": None,
                            "error": result["error"]["message"],
                        }
                    )
                else:
                    second = (
                        result["top_k"][1] if len(result["top_k"]) > 1 else {"label": None, "score": None}
                    )
                    rows.append(
                        {
                            "file": upload.name,
                            "label": result["label"],
                            "confidence": result["confidence"],
                            "runner_up": second["label"],
                            "runner_up_confidence": second["score"],
                            "latency_ms": result["latency_ms"],
                            "error": None,
                        }
                    )
            table = pd.DataFrame(rows)
            ok = int(table["error"].isna().sum())
            table["error"] = table["error"].fillna("")
            st.subheader(f"Results for {len(files)} images ({ok} recognised)")
            st.dataframe(
                table,
                hide_index=True,
                width="stretch",
                column_config={
                    "confidence": st.column_config.ProgressColumn(
                        "confidence", min_value=0, max_value=1, format="%.3f"
                    ),
                    "runner_up_confidence": st.column_config.NumberColumn(
                        "runner-up confidence", format="%.3f"
                    ),
                    "runner_up": st.column_config.TextColumn("runner-up"),
                    "latency_ms": st.column_config.NumberColumn("latency", format="%.1f ms"),
                },
            )
            st.download_button(
                "Download results as CSV",
                table.to_csv(index=False).encode(),
                file_name="digit_predictions.csv",
                mime="text/csv",
                icon=":material/download:",
            )
            choice = st.selectbox("Show details for", range(len(files)), format_func=lambda i: files[i].name)
            if choice is not None:
                data = payloads[choice]
                result = service.predict(data, explain=True)
                show_result(result, _displayable(data, result))
    else:
        st.caption("Tip: a photo works best cropped around the digit, with the digit dark on light paper.")

with draw_tab:
    st.caption("Draw one digit, large, with the mouse or a finger. Release to recognise it.")
    st.write("")  # room for the canvas toolbar, which floats above the drawing area
    try:
        from streamlit_drawable_canvas import st_canvas  # registers a component: import inside the page
    except Exception:  # noqa: BLE001 - the rest of the page works without the canvas
        st_canvas = None
        st.info("The drawing canvas is not available in this installation (streamlit-drawable-canvas).")
    if st_canvas is not None:
        pad, result_col = st.columns([1, 1.6])
        with pad:
            canvas = st_canvas(
                stroke_width=20,
                stroke_color="#000000",
                background_color="#FFFFFF",
                height=280,
                width=280,
                drawing_mode="freedraw",
                return_image_data=True,
                key="vision_canvas",
            )
        with result_col:
            drawn = (canvas.json_data or {}).get("objects") if canvas is not None else None
            if drawn and canvas.image_data is not None:
                with user_facing_errors("reading your drawing"):
                    show_result(service.predict_array(canvas.image_data, explain=True))
            else:
                st.info("Nothing drawn yet.", icon=":material/draw:")

with examples_tab:
    examples = example_inputs()
    st.caption(
        "MNIST test digits, photo-like and printed renders, and canvas-style drawings bundled with the app "
        "(none of the renders or drawings were used in training). Click one to recognise it."
    )
    per_row = 7
    for start in range(0, len(examples), per_row):
        cols = st.columns(per_row)
        for col, example in zip(cols, examples[start : start + per_row], strict=False):
            with col:
                st.image(_thumbnail(example["path"]), width="stretch")
                if st.button(
                    f"Digit {example['label']}", key=f"example_{example['name']}", help=example["description"]
                ):
                    st.session_state["vision_example"] = example["name"]
    chosen = st.session_state.get("vision_example")
    match = [e for e in examples if e["name"] == chosen]
    if match:
        example = match[0]
        st.markdown(f"**Example:** {example['description']} (true digit: {example['label']})")
        data = Path(example["path"]).read_bytes()
        with user_facing_errors("reading the example"):
            show_result(service.predict(data, explain=True), data)
