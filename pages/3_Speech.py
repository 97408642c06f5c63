"""Speech: spoken digits and voice commands from the microphone, an upload or a bundled example,
with a small demo that does what the commands say (its rules live in services.voice_demo)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from pages.ui import (
    cached,
    chart_height,
    confidence_bars,
    latency_caption,
    result_actions,
    scroll_into_view_on_phone,
    setup_page,
    shared_input,
    speech_service,
    user_facing_errors,
)
from pages.ui.charts import waveform_chart
from services import speech, voice_demo

setup_page(
    "Speech: digits and voice commands",
    "🎙️",
    "Say a digit (zero to nine) or a command — yes, no, up, down, left, right, on, off, stop, go — or a "
    "few words with a clear pause after each. A small recurrent network trained by this project "
    "recognises each one and says so when it hears a word it does not know; voices unlike its training "
    "voices are misheard more often (see “About this model” for the figures on strangers' voices).",
)


@st.cache_data(show_spinner=False)
def example_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


UPLOAD_TYPES = ["wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "aac", "webm"]

if "speech_demo" not in st.session_state:
    st.session_state.speech_demo = voice_demo.DemoState()
    st.session_state.speech_input_id = 0  # bumped on every new input, so the demo acts once per input
    st.session_state.speech_demo_applied = 0
if "speech_source" not in st.session_state:
    st.session_state.speech_source = None  # ("record" | "upload" | "example", example path)
    # A shared link names a bundled example: open the page on it (never a path from the URL).
    shared = shared_input("example")
    for bundled in speech.example_inputs():
        if shared and Path(bundled["path"]).name == shared:
            st.session_state.speech_source = ("example", bundled["path"])


def _choose(kind: str, path: str | None = None) -> None:
    st.session_state.speech_source = (kind, path)
    st.session_state.speech_input_id += 1


def _test_figures(metrics: dict) -> str:
    """One line per test set from metrics.json (nothing typed by hand)."""
    rows = []
    for entry in metrics.get("test_sets", {}).values():
        figures = ", ".join(
            f"{name.replace('_', ' ')} **{value:.3f}**"
            for name, value in entry.items()
            if name not in ("name", "n", "unit") and isinstance(value, int | float)
        )
        rows.append(f"- {entry['name']} ({entry['n']} {entry['unit']}): {figures}")
    if not rows and "accuracy" in metrics:
        rows.append(f"- {metrics.get('dataset', 'test split')}: accuracy **{metrics['accuracy']:.3f}**")
    return "\n".join(rows)


def _reading_speed(feats: dict) -> str:
    """The speed validation chose for reading clips, when it is not their own."""
    speed = feats.get("speed", 1.0)
    if speed == 1.0:
        return ""
    how = "slower and lower" if speed < 1.0 else "faster and higher"
    return f", each part read at {speed:.0%} speed (a little {how}, chosen on validation)"


with st.expander("About this model and its limits", icon=":material/info:"):
    with user_facing_errors("reading the model facts"):
        facts = speech_service().info()
        feats = facts["features"]
        held_out = facts["metrics"].get("held_out", "")
        trained_on = facts["metrics"].get("trained_on", "")
        st.markdown(
            f"""
**Model.** {feats["kind"].capitalize()} ({feats["n_mels"]} bands, {feats["win_length"] * 1000 // feats["sample_rate"]} ms
windows every {feats["hop_length"] * 1000 // feats["sample_rate"]} ms, {feats["sample_rate"] // 1000} kHz audio{_reading_speed(feats)}) →
{facts["architecture"]}; {facts["parameters"]:,} parameters ({facts["weights_bytes"] / 1e6:.1f} MB).
Words it knows: the digits {", ".join(f"“{label}”" for label in facts["vocabulary"]["digits"])} and the
commands {", ".join(f"“{label}”" for label in facts["vocabulary"]["commands"]) or "(none in this checkpoint)"};
any other word is answered “not a word I know” (with the closest known word), and silence or noise
“no speech”.

**Trained on.** {trained_on or "see the model card"}

**Measured on held-out sets** (never trained or tuned on{": " + held_out if held_out else ""}):

{_test_figures(facts["metrics"])}

**Audio path.** Your file is decoded (WAV, FLAC, OGG, MP3; M4A/AAC when ffmpeg is installed), mixed to
mono, resampled to {feats["sample_rate"] // 1000} kHz, and split on pauses by an energy and voicing detector
(a voice much quieter than yours, such as someone else in the room, is ignored as background); each part is
loudness-normalised and classified.

**Limits.** English only: the digits “zero” to “nine” (not “oh”) and the ten commands above, one word at a
time. Pause about a quarter of a second between words; a run of digits reads as one number (“4 2 7” → 427).
Files up to {facts["limits"]["max_upload_bytes"] // 1_000_000} MB and {facts["limits"]["max_seconds"]:.0f} s,
at most {facts["limits"]["max_words"]} words. Silence or steady noise is reported as “no speech detected”;
a word it does not know is reported as such, with the known word it sounded closest to.
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
    st.markdown("**…or try an example** (test recordings)")
    examples = speech.example_inputs()
    buttons = st.columns(3)
    for i, example in enumerate(examples):
        label = {
            "digit": f"“{example['expected']}”",
            "string": f"“{example['expected']}” string",
            "command": f"“{example['expected']}”",
            "other": f"“{example['name'].split('_')[1]}” (unknown)",
        }[example["kind"]]
        buttons[i % 3].button(
            label, key=f"speech_example_{i}", help=example["title"], on_click=_choose, args=("example", example["path"]),
            width="stretch",
        )  # fmt: skip
    st.caption(
        "Examples: digits from the Free Spoken Digit Dataset, Zohar Jackson et al., "
        "[CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/) (test split; the string is three "
        "clips joined with pauses); commands and the unknown word from Google's Speech Commands, "
        "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/), speakers the model never trained on."
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

demo_slot = st.container(key="speech_demo", border=True)


def _draw_demo() -> None:
    """The command demo: the grid, lamp and question as they are after the latest words."""
    state: voice_demo.DemoState = st.session_state.speech_demo
    with demo_slot:
        st.markdown("**Voice command demo** — say “up”, “down”, “left”, “right” (or “right 3”), “stop” / “go”, "
                    "“on” / “off”, and answer the question with “yes” or “no”.")  # fmt: skip
        grid, status = st.columns([1, 2])
        with grid:
            st.altair_chart(_demo_chart(state), width="content")
        with status:
            st.markdown(
                f"Lamp **{'on' if state.lamp_on else 'off'}** · marker "
                f"**{'can move' if state.moving else 'stopped'}** · "
                f"questions right: **{state.score[0]} of {state.score[1]}**"
            )
            st.markdown(f"**Question:** {state.question_text}")
            if state.history:
                st.caption("Latest: " + " · ".join(reversed(state.history[-4:])))
            st.button("Reset the demo", key="speech_demo_reset", on_click=_reset_demo)


def _demo_chart(state: voice_demo.DemoState) -> alt.Chart:
    """The grid with the marker (purple, red when stopped) and the lamp beside it (yellow when on)."""
    size = voice_demo.GRID_SIZE
    cells = pd.DataFrame(
        [{"x": x, "y": y, "fill": "#e5e7eb"} for y in range(size) for x in range(size)]
        + [{"x": state.position[0], "y": state.position[1], "fill": "#7c3aed" if state.moving else "#dc2626"}]
    )
    cells["x2"], cells["y2"] = cells["x"] + 0.88, cells["y"] + 0.88
    scale_x = alt.Scale(domain=[0, size + 1.6])
    scale_y = alt.Scale(domain=[size, 0])
    squares = (
        alt.Chart(cells)
        .mark_rect(cornerRadius=3)
        .encode(
            x=alt.X("x:Q", scale=scale_x, axis=None),
            x2="x2:Q",
            y=alt.Y("y:Q", scale=scale_y, axis=None),
            y2="y2:Q",
            color=alt.Color("fill:N", scale=None),
        )
    )
    lamp = pd.DataFrame([{"x": size + 0.9, "y": 0.6, "fill": "#facc15" if state.lamp_on else "#374151"}])
    bulb = (
        alt.Chart(lamp)
        .mark_circle(size=700, stroke="#111827")
        .encode(
            x=alt.X("x:Q", scale=scale_x),
            y=alt.Y("y:Q", scale=scale_y),
            color=alt.Color("fill:N", scale=None),
        )
    )
    label = alt.Chart(lamp).mark_text(dy=26, text="lamp").encode(x="x:Q", y="y:Q")
    return (squares + bulb + label).properties(width=220, height=160).configure_view(stroke=None)


def _reset_demo() -> None:
    st.session_state.speech_demo = voice_demo.DemoState()


if data is None:
    _draw_demo()
    st.info("Record, upload or pick an example to see what the model hears.", icon=":material/mic:")
    st.stop()


def _spectrogram_chart(features: np.ndarray, frame_s: float) -> alt.Chart:
    """(T, n_mels) normalised log-mel as a heatmap, low frequencies at the bottom."""
    frames, bands = features.shape
    cells = pd.DataFrame(
        {
            "time (s)": np.repeat(np.arange(frames) * frame_s, bands),
            "mel band": np.tile(np.arange(bands), frames),
            "value": features.reshape(-1),
        }
    )
    return (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("time (s):O", axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("mel band:O", sort="descending", axis=alt.Axis(labels=False, ticks=False)),
            color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis"), legend=None),
        )
        .properties(height=chart_height())
    )


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
            color=alt.Color("measure:N", legend=alt.Legend(orient="bottom", title=None)),
        )
        # Streamlit fits axes and legend inside the height: 150 px with the legend on top left no room
        # to plot (a flat line); chart_height keeps >= 120 px of plotting area.
        .properties(height=chart_height(legend=True))
    )


with st.container(key="speech_result"), user_facing_errors("recognising the audio"):
    service = speech_service()
    with st.spinner("Listening…"):
        result = cached(service.predict)(data, top_k=8, explain=True)
    details = result.pop("details")
    if st.session_state.speech_input_id != st.session_state.speech_demo_applied:
        # Each new input acts on the demo once (a rerun of the same input does not repeat it).
        st.session_state.speech_demo_applied = st.session_state.speech_input_id
        st.session_state.speech_demo, _ = voice_demo.apply_words(
            st.session_state.speech_demo, voice_demo.words_of(result)
        )

    st.divider()
    heard, stats = st.columns([1.2, 2])
    with heard:
        if result["label"] is None:
            st.markdown("### Heard speech, but not a word I know")
            closest = result.get("closest")
            st.caption(
                "The model knows the digits 0–9 and ten commands; this sounded like another word "
                f"(confidence {result['confidence']:.1%} that it is none of them)."
                + (
                    f" Closest known word: “{closest['label']}” ({closest['confidence']:.1%})."
                    if closest
                    else ""
                )
            )
        else:
            kind = {"digit": "a number" if result["n_digits"] > 1 else "a digit", "command": "a command"}.get(
                result.get("kind"), "digits and commands"
            )
            st.markdown(f"### Heard “{result['label']}”")
            n_words = len(result.get("words", [])) or result["n_digits"]
            if n_words > 1:
                st.caption(
                    f"{kind}, {n_words} words, overall confidence {result['confidence']:.1%} (product of the parts)"
                )
            else:
                st.caption(f"{kind}, confidence {result['confidence']:.1%}")
            if result["low_confidence"]:
                st.warning(
                    "Low confidence: the model is unsure. Speak clearly, one word at a time, with pauses."
                )
        for note in result["notes"]:
            st.caption(f"Note: {note}")
        latency_caption(result["latency_ms"])
        example_name = Path(source[1]).name if source and source[0] == "example" and source[1] else None
        result_actions(result, {"example": example_name} if example_name else None, key="speech")
        st.markdown(
            f"**Processed audio** (mono, {details['sample_rate'] / 1000:g} kHz, trimmed and loudness-normalised)"
        )
        st.audio(np.asarray(details["processed_audio"], dtype=np.float32), sample_rate=details["sample_rate"])
    with stats:
        st.markdown(f"**Input**: {source_text} · {result['duration_s']:.2f} s · {result['input_sample_rate']} Hz · "
                    f"{result['input_channels']} channel(s) · speech from {result['speech_start_s']:.2f} s "
                    f"to {result['speech_end_s']:.2f} s")  # fmt: skip
        st.altair_chart(
            waveform_chart(
                np.asarray(details["waveform"], dtype=np.float32), details["sample_rate"], details["parts_s"]
            ),
            width="stretch",
        )
        st.caption(
            f"Waveform resampled to {details['sample_rate'] / 1000:g} kHz, its amplitude axis scaled to the "
            "loudest sample; the shaded parts are what the detector kept (one per spoken word)."
        )

    def _part_title(index: int, part: dict) -> str:
        if part["label"]:
            return f"Part {index + 1}: “{part['label']}”"
        return f"Part {index + 1}: {'noise' if part.get('reason') == 'no speech' else 'unknown word'}"

    tabs = (
        st.tabs([_part_title(i, part) for i, part in enumerate(result["parts"])])
        if result["n_parts"] > 1
        else [st.container()]
    )
    for tab, digit, explained in zip(tabs, result["parts"], details["segments"], strict=True):
        with tab:
            bars, picture = st.columns([1, 2])
            with bars:
                st.markdown(f"**Class confidences** ({digit['start_s']:.2f}–{digit['end_s']:.2f} s)")
                all_scores = digit["top_k"]
                confidence_bars(all_scores)
            with picture:
                bands = len(explained["features"][0]) if explained["features"] else 0
                st.markdown(
                    f"**What the model saw**: normalised log-mel spectrogram ({bands} bands, "
                    f"{details['frame_s'] * 1000:.0f} ms frames)"
                )
                st.altair_chart(
                    _spectrogram_chart(np.asarray(explained["features"]), details["frame_s"]), width="stretch"
                )
                st.markdown("**Which frames drove the answer**")
                st.altair_chart(
                    _importance_chart(
                        np.asarray(explained["importance"]),
                        np.asarray(explained["attention"]),
                        details["frame_s"],
                    ),
                    width="stretch",
                )
                st.caption(
                    "Gradient × input: how much each frame's features move the winning score. Attention: the "
                    "weight the pooling layer gave each 20 ms step."
                )
    if result.get("kind") == "digit" and result["n_digits"] > 1 and result["top_k"]:
        st.markdown("**Most likely strings**")
        st.dataframe(
            pd.DataFrame(
                [{"string": row["label"], "probability": row["score"]} for row in result["top_k"][:5]]
            ),
            hide_index=True,
        )
    # On a phone the three ways to give audio fill the first screens: bring the answer up once per input.
    scroll_into_view_on_phone("speech_result", hashlib.sha256(data).hexdigest())
_draw_demo()
