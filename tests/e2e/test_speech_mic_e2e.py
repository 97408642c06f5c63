"""The real microphone path of the Speech page: Chromium's fake capture device plays a WAV file into
`st.audio_input`, the test presses Record and Stop like a user, and the answer and the command demo
show what was said.

Each recording needs its own browser (the file is a launch flag), so this file launches Chromium itself.
With SCREENSHOTS=1 the command demo's picture is saved to docs/screenshots/speech_command_demo.png.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
from playwright.sync_api import expect

from bench.app_server import CHROMIUM_ARGS
from services import audio_io
from tests.e2e.browser import open_page, wait_for_idle
from tests.e2e.conftest import CHROMIUM, REPO_ROOT

EXAMPLES = REPO_ROOT / "models" / "speech" / "examples"
RATE = 48_000  # what a browser microphone usually delivers
LEAD_S, TAIL_S = 0.6, 6.0  # quiet before the word, and after it for longer than the recording
RECORD_MS = 3_000


def microphone_file(example: str, folder) -> str:
    """The example word at 48 kHz between stretches of a quiet room (faint noise, not digital zero),
    as 16-bit PCM WAV, which Chromium's fake capture device reads."""
    wave, rate = sf.read(EXAMPLES / example, dtype="float32")
    wave = audio_io.resample(wave, rate, RATE)
    rng = np.random.default_rng(0)
    lead, tail = (rng.normal(0, 2e-4, int(s * RATE)).astype(np.float32) for s in (LEAD_S, TAIL_S))
    path = folder / f"mic_{example}"
    sf.write(path, np.concatenate([lead, wave / np.abs(wave).max() * 0.5, tail]), RATE, subtype="PCM_16")
    return str(path)


@pytest.fixture
def mic_page(playwright, tmp_path):
    """Open a fresh Chromium whose microphone plays the given example once; yields a page factory."""
    browsers = []

    def launch(example: str):
        capture = microphone_file(example, tmp_path)
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={capture}%noloop",
            ],
        )
        browsers.append(browser)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.grant_permissions(["microphone"])
        page = context.new_page()
        page.set_default_navigation_timeout(120_000)  # the first visit loads the model on a busy CPU
        return page

    yield launch
    for browser in browsers:
        browser.close()


def record(page) -> None:
    """Press Record, let the fake microphone play, press Stop; wait for the page to answer."""
    page.get_by_role("button", name="Record").first.click()
    page.wait_for_timeout(RECORD_MS)
    page.get_by_role("button", name="Stop recording").click()
    page.wait_for_timeout(500)
    wait_for_idle(page)


def test_a_digit_said_into_the_microphone_is_read(mic_page, app_url):
    page = mic_page("7_yweweler_3.wav")
    open_page(page, app_url, "Speech")
    record(page)
    expect(page.get_by_text("Heard “7”")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("a digit, confidence")).to_be_visible()


def test_a_command_said_into_the_microphone_moves_the_demo(mic_page, app_url, tmp_path):
    page = mic_page("command_up_0c40e715.wav")
    open_page(page, app_url, "Speech")
    demo = page.locator(".st-key-speech_demo")
    expect(demo).to_contain_text("Voice command demo", timeout=60_000)
    record(page)
    expect(page.get_by_text("Heard “up”")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("a command, confidence")).to_be_visible()
    expect(demo).to_contain_text("“up”: moved 1 cell")
    folder = REPO_ROOT / "docs" / "screenshots" if os.environ.get("SCREENSHOTS") == "1" else tmp_path
    demo.screenshot(path=str(folder / "speech_command_demo.png"))
