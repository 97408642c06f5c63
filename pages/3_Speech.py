"""Speech: spoken digits (single or strings) from the microphone, an upload or a bundled example."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from pages.ui import confidence_bars, latency_caption, setup_page, user_facing_errors
from services import audio_io
from services import speech as speech_service

setup_page(
    "Speech: spoken digits",
    "🎙️",
    "Say a digit (0–9), or several with short pauses (“four … two … seven”). A small recurrent network "
    "trained by this project on the Free Spoken Digit Dataset recognises each one.",
)


@st.cache_resource(show_spinner="Loading the speech model…")
def get_service() -> speech_service.SpeechService:
    return speech_service.load_service()


@st.cache_data(show_spinner=False)
def example_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


UPLOAD_TYPES = ["wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "aac", "webm"]
VIRIDIS = np.array(
    [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
     [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]],
    dtype=np.float64,
)  # fmt: skip

if "speech_source" not in st.session_state:
    st.session_state.speech_source = None  # ("record" | "upload" | "example", example path)


def _choose(kind: str, path: str | None = None) -> None:
    st.session_state.speech_source = (kind, path)


with st.expander("About this model and its limits", icon=":material/info:"):
    st.markdown(
        f"""
**Model.** Log-mel spectrogram (40 bands, 25 ms windows every 10 ms, 8 kHz audio) → a 1-D convolution →
a two-layer bidirectional GRU → attention pooling → 10 classes. About 190 k parameters, trained from
scratch on the six speakers of the [Free Spoken Digit Dataset](https://github.com/Jakobovski/free-spoken-digit-dataset)
(recordings 5–49, CC BY-SA 4.0) with heavy augmentation (speed and pitch, vocal-tract warping, noise,
reverb, other sample rates, SpecAugment). It reaches 99 %+ on the dataset's held-out test recordings;
see the model card for the exact figures.

**Audio path.** Your file is decoded (WAV, FLAC, OGG, MP3; M4A/AAC when ffmpeg is installed), mixed to
mono, resampled to 8 kHz, and split on pauses by an energy and voicing detector; each part is
loudness-normalised and classified.

**Limits.** English digits only, “zero” to “nine” (not “oh”). All six training speakers are adult men,
so other voices (women, children, strong accents, synthetic speech) are harder. Pause about a
quarter of a second between digits. Files up to {audio_io.MAX_UPLOAD_BYTES // 1_000_000} MB and
{audio_io.MAX_SECONDS:.0f} s, at most {speech_service.MAX_DIGITS} digits. Silence or steady noise is
reported as “no speech detected”, but anything else that is voiced gets one of the ten digits.
"""
    )

record_col, upload_col, example_col = st.columns([1, 1, 1.2])
with record_col:
    recording = st.audio_input(
        "Record from your microphone",
        sample_rate=16_000,
        key="speech_record",
        on_change=_choose,
        args=("record",),
    )
with upload_col:
    uploaded = st.file_uploader(
        "…or upload an audio file",
        type=UPLOAD_TYPES,
        key="speech_upload",
        on_change=_choose,
        args=("upload",),
    )
with example_col:
    st.markdown("**…or try an example** (FSDD test recordings)")
    examples = speech_service.example_inputs()
    buttons = st.columns(3)
    for i, example in enumerate(examples):
        label = (
            f"“{example['expected']}”"
            if not example["name"].startswith("string_")
            else f"“{example['expected']}” string"
        )
        buttons[i % 3].button(
            label, key=f"speech_example_{i}", help=example["title"], on_click=_choose, args=("example", example["path"]),
            width="stretch",
        )  # fmt: skip
    st.caption(
        "Examples: Free Spoken Digit Dataset, Zohar Jackson et al., "
        "[CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/) (test split; the string is three "
        "clips joined with pauses)."
    )

source = st.session_state.speech_source
data: bytes | None = None
source_text = ""
if source is None:
    # No explicit choice yet: use whatever the widgets hold (e.g. a recording made before a rerun).
    source = ("record",) if recording is not None else ("upload",) if uploaded is not None else None
if source:
    if source[0] == "record" and recording is not None:
        data, source_text = recording.getvalue(), "your recording"
    elif source[0] == "upload" and uploaded is not None:
        data, source_text = uploaded.getvalue(), "the uploaded file"
    elif source[0] == "example" and source[1]:
        name = Path(source[1]).name
        data, source_text = example_bytes(source[1]), f"example {name}"

if data is None:
    st.info("Record, upload or pick an example to see what the model hears.", icon=":material/mic:")
    st.stop()


def _waveform_chart(wave: np.ndarray, sample_rate: int, parts: list[tuple[float, float]]) -> alt.Chart:
    """Min/max envelope of the waveform with the detected spoken parts shaded."""
    bins = max(1, min(1200, wave.shape[0]))
    edges = np.linspace(0, wave.shape[0], bins + 1).astype(int)
    low = np.array([wave[a:b].min() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
    high = np.array([wave[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
    frame = pd.DataFrame({"time (s)": edges[:-1] / sample_rate, "low": low, "high": high})
    regions = pd.DataFrame(
        [{"start": s, "end": e, "part": f"digit {i + 1}"} for i, (s, e) in enumerate(parts)]
    )
    shade = (
        alt.Chart(regions)
        .mark_rect(opacity=0.18, color="#7c3aed")
        .encode(
            x=alt.X("start:Q", title="time (s)"),
            x2="end:Q",
            tooltip=["part", alt.Tooltip("start:Q", format=".2f"), alt.Tooltip("end:Q", format=".2f")],
        )
    )
    area = (
        alt.Chart(frame)
        .mark_area(color="#4c1d95")
        .encode(
            x=alt.X("time (s):Q"),
            y=alt.Y("low:Q", title="amplitude", scale=alt.Scale(domain=[-1, 1])),
            y2="high:Q",
        )
    )
    return (shade + area).properties(height=180)


def _spectrogram_image(features: np.ndarray) -> np.ndarray:
    """(T, n_mels) normalised log-mel → an RGB image, low frequencies at the bottom."""
    values = features.T[::-1]
    values = (values - values.min()) / max(1e-6, float(values.max() - values.min()))
    position = values * (len(VIRIDIS) - 1)
    index = np.clip(position.astype(int), 0, len(VIRIDIS) - 2)
    frac = (position - index)[..., None]
    rgb = VIRIDIS[index] * (1 - frac) + VIRIDIS[index + 1] * frac
    return np.repeat(np.repeat(rgb, 4, axis=0), 4, axis=1).astype(np.uint8)


def _importance_chart(importance: np.ndarray, attention: np.ndarray, frame_s: float) -> alt.Chart:
    rows = [
        {"time (s)": i * frame_s, "weight": float(v), "measure": "gradient × input"}
        for i, v in enumerate(importance)
    ]
    att = attention / max(1e-9, float(attention.max()))
    rows += [
        {"time (s)": i * 2 * frame_s, "weight": float(v), "measure": "attention"} for i, v in enumerate(att)
    ]
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(interpolate="step-after")
        .encode(
            x="time (s):Q",
            y=alt.Y("weight:Q", title="relative importance", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("measure:N", legend=alt.Legend(orient="top", title=None)),
        )
        .properties(height=150)
    )


with user_facing_errors("recognising the audio"):
    service = get_service()
    with st.spinner("Listening…"):
        result = service.predict(data, top_k=10, explain=True)
    details = result.pop("details")

    st.divider()
    heard, stats = st.columns([1.2, 2])
    with heard:
        st.markdown(f"### Heard “{result['label']}”")
        if result["n_digits"] > 1:
            st.caption(
                f"{result['n_digits']} digits, overall confidence {result['confidence']:.1%} (product of the parts)"
            )
        else:
            st.caption(f"confidence {result['confidence']:.1%}")
        if result["confidence"] < 0.5:
            st.warning(
                "Low confidence: the model is unsure. Speak clearly, one digit at a time, with pauses."
            )
        latency_caption(result["latency_ms"])
        st.markdown("**Processed audio** (mono, 8 kHz, trimmed and loudness-normalised)")
        st.audio(details["processed_audio"], sample_rate=details["sample_rate"])
    with stats:
        st.markdown(f"**Input**: {source_text} · {result['duration_s']:.2f} s · {result['input_sample_rate']} Hz · "
                    f"{result['input_channels']} channel(s) · speech from {result['speech_start_s']:.2f} s "
                    f"to {result['speech_end_s']:.2f} s")  # fmt: skip
        st.altair_chart(
            _waveform_chart(details["waveform"], details["sample_rate"], details["parts_s"]),
            width="stretch",
        )
        st.caption(
            "Waveform resampled to 8 kHz; the shaded parts are what the detector kept (one per digit)."
        )

    tabs = (
        st.tabs([f"Digit {i + 1}: “{d['label']}”" for i, d in enumerate(result["digits"])])
        if result["n_digits"] > 1
        else [st.container()]
    )
    for tab, digit, explained in zip(tabs, result["digits"], details["segments"], strict=True):
        with tab:
            bars, picture = st.columns([1, 2])
            with bars:
                st.markdown(f"**Class confidences** ({digit['start_s']:.2f}–{digit['end_s']:.2f} s)")
                all_scores = digit["top_k"]
                confidence_bars(all_scores)
            with picture:
                st.markdown("**What the model saw**: normalised log-mel spectrogram (40 bands, 10 ms frames)")
                st.image(_spectrogram_image(explained["features"]), width="stretch")
                st.markdown("**Which frames drove the answer**")
                st.altair_chart(
                    _importance_chart(explained["importance"], explained["attention"], details["frame_s"]),
                    width="stretch",
                )
                st.caption(
                    "Gradient × input: how much each frame's features move the winning score. Attention: the "
                    "weight the pooling layer gave each 20 ms step."
                )
    if result["n_digits"] > 1 and result["top_k"]:
        st.markdown("**Most likely strings**")
        st.dataframe(
            pd.DataFrame(
                [{"string": row["label"], "probability": row["score"]} for row in result["top_k"][:5]]
            ),
            hide_index=True,
        )
