"""AppTest for pages/3_Speech.py: microphone (audio_input), upload, example buttons (digits, a string,
commands, an unknown word), the command demo, bad input."""

from __future__ import annotations

import io
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

from services import audio_io, speech
from tests.conftest import REPO_ROOT

PAGE = str(REPO_ROOT / "pages" / "3_Speech.py")
EXAMPLES = REPO_ROOT / "models" / "speech" / "examples"


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    return at


@pytest.fixture(autouse=True)
def fresh_result_cache():
    """Pages cache results per input for every session; tests that patch the model must not get an
    answer cached by an earlier test."""
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


def markdown_text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_page_renders_with_inputs_and_explanation(app):
    assert "Speech: digits and voice commands" in app.title[0].value
    intro = markdown_text(app) + " ".join(str(c.value) for c in app.caption)
    assert all(
        word in intro for word in ("yes, no, up, down, left, right, on, off, stop, go", "zero to nine")
    )
    assert len(app.audio_input) == 1 and len(app.file_uploader) == 1
    assert any("Record, upload or pick an example" in str(i.value) for i in app.info)
    assert any("About this model" in e.label for e in app.expander)


def test_recording_from_the_microphone_is_recognised(app):
    app.audio_input[0].set_value(("recording.wav", (EXAMPLES / "6_theo_2.wav").read_bytes(), "audio/wav"))
    app.run()
    assert not app.exception
    assert "Heard “6”" in markdown_text(app)
    assert not app.warning


def test_uploaded_44k_stereo_flac_is_recognised(app):
    wave, rate = sf.read(EXAMPLES / "9_lucas_4.wav", dtype="float32")
    wave = audio_io.resample(wave, rate, 44_100)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([wave, wave * 0.8], axis=1), 44_100, format="FLAC")
    app.file_uploader[0].set_value(("nine.flac", buffer.getvalue(), "audio/flac"))
    app.run()
    assert not app.exception
    assert "Heard “9”" in markdown_text(app)


def test_example_button_shows_a_digit_string(app):
    button = next(b for b in app.button if "string" in str(b.label))
    button.click().run()
    assert not app.exception
    assert "Heard “427”" in markdown_text(app)
    assert len(app.tabs) == 3


def test_the_unknown_word_example_is_answered_not_a_word_i_know(app):
    # No mock: the shipped model's own answer to the bundled "house".
    button = next(b for b in app.button if str(b.label) == "“house” (unknown)")
    button.click().run()
    assert not app.exception and not app.warning
    assert "Heard speech, but not a word I know" in markdown_text(app)
    assert any("Closest known word" in str(c.value) for c in app.caption)
    assert "Heard “" not in markdown_text(app)


def test_command_examples_drive_the_demo_once_per_input(app):
    assert "Is the lamp on?" in markdown_text(app)
    next(b for b in app.button if str(b.label) == "“on”").click().run()
    assert not app.exception
    assert "Heard “on”" in markdown_text(app) and "Lamp **on**" in markdown_text(app)
    up = next(b for b in app.button if str(b.label) == "“up”")
    up.click().run()
    assert "Heard “up”" in markdown_text(app)
    app.run()  # a rerun without a new input does not move the marker again
    state = app.session_state["speech_demo"]
    assert state.position == (2, 1) and state.lamp_on
    next(b for b in app.button if str(b.label) == "“yes”").click().run()  # "Is the lamp on?" - yes
    assert app.session_state["speech_demo"].score == (1, 1)
    next(b for b in app.button if str(b.label) == "Reset the demo").click().run()
    assert app.session_state["speech_demo"].position == (2, 2)
    assert not app.session_state["speech_demo"].lamp_on


def test_bad_upload_shows_a_warning_not_a_traceback(app):
    app.file_uploader[0].set_value(("song.mp3", b"definitely not audio" * 50, "audio/mpeg"))
    app.run()
    assert not app.exception
    assert not app.error
    assert any("not an audio file" in str(w.value) for w in app.warning)


def test_silent_recording_says_no_speech(app):
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(16_000, dtype=np.float32), 16_000, format="WAV")
    app.audio_input[0].set_value(("silence.wav", buffer.getvalue(), "audio/wav"))
    app.run()
    assert not app.exception
    assert any("no speech detected" in str(w.value) for w in app.warning)


def test_a_word_it_does_not_know_says_so(app):
    # The page's rendering of the service's "not a word I know" answer (the decision itself is tested
    # in tests/test_speech_service.py): every part is judged an unknown word here.
    with mock.patch.object(speech.SpeechService, "_read_part", return_value=(None, "unknown")):
        app.file_uploader[0].set_value(("word.wav", (EXAMPLES / "6_theo_2.wav").read_bytes(), "audio/wav"))
        app.run()
    assert not app.exception and not app.warning
    assert "Heard speech, but not a word I know" in markdown_text(app)
    assert "Heard “" not in markdown_text(app)


def test_a_non_digit_inside_a_string_is_dropped_with_a_note(app):
    pieces = []
    for path in (EXAMPLES / "2_jackson_0.wav", EXAMPLES / "6_theo_2.wav", EXAMPLES / "7_yweweler_3.wav"):
        wave, rate = sf.read(path, dtype="float32")
        wave = audio_io.normalize_loudness(audio_io.resample(wave, rate, 16_000), -25.0)
        pieces += [wave, np.zeros(8_000, dtype=np.float32)]
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate(pieces), 16_000, format="WAV")
    readings = [("2", "word"), (None, "unknown"), ("7", "word")]
    with mock.patch.object(speech.SpeechService, "_read_parts", return_value=readings):
        app.audio_input[0].set_value(("mixed.wav", buffer.getvalue(), "audio/wav"))
        app.run()
    assert not app.exception
    assert "Heard “27”" in markdown_text(app)
    assert any("not a word I know" in str(c.value) for c in app.caption)
    assert len(app.tabs) == 3


def test_about_box_reads_its_figures_from_the_metrics_file(app):
    import json

    metrics = json.loads((REPO_ROOT / "models" / "speech" / "metrics.json").read_text())
    about = markdown_text(app)
    for entry in metrics["test_sets"].values():
        assert entry["name"] in about
    assert f"{metrics['test_sets']['digit_strings']['exact_match']:.3f}" in about


def test_about_box_states_the_models_own_rate_and_reading_speed(app):
    from models.speech import SPEECH_BUNDLE

    features = SPEECH_BUNDLE.features
    about = markdown_text(app)
    assert f"{features.sample_rate // 1000} kHz audio" in about
    if features.speed != 1.0:
        assert f"read at {features.speed:.0%} speed" in about and "chosen on validation" in about
    else:
        assert "speed (a little" not in about


def test_page_never_imports_torch():
    source = Path(PAGE).read_text()
    assert "import torch" not in source


def _contrast(colour: str, background: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(colour), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_waveform_axis_fits_the_signal_and_shows_in_both_themes(app):
    """Issue 32: an example "7" peaking near ±0.1 was drawn on a fixed ±1 axis (a flat line), in dark
    purple on the dark theme's near-black. The axis now reaches just past the loudest sample and the
    wave keeps at least 3:1 contrast (WCAG, graphics) on the light and the dark background."""
    import json

    example = (EXAMPLES / "7_yweweler_3.wav").read_bytes()
    app.audio_input[0].set_value(("seven.wav", example, "audio/wav"))
    app.run()
    assert not app.exception
    waveform = [
        json.loads(chart.proto.spec)
        for chart in app.get("vega_lite_chart")
        if '"amplitude"' in chart.proto.spec
    ]
    assert len(waveform) == 1
    area = next(layer for layer in waveform[0]["layer"] if layer["mark"]["type"] == "area")
    low, high = area["encoding"]["y"]["scale"]["domain"]
    wave = np.asarray(speech.load_service().predict(example, explain=True)["details"]["waveform"])
    peak = float(np.abs(wave).max())
    assert -low == high and peak <= high <= 1.5 * peak + 0.01, (high, peak)
    colour = area["mark"]["color"]
    theme = (REPO_ROOT / ".streamlit" / "config.toml").read_text()
    for background in ("#FFFFFF", "#0F1117"):
        assert background in theme  # the backgrounds of the light and dark themes
        assert _contrast(colour, background) >= 3.0, (colour, background)
