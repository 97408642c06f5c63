"""Speech page in the real browser: upload a WAV, see the digit; an unknown word and a bad file."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.browser import open_page, upload, wait_for_idle
from tests.e2e.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "models" / "speech" / "examples"


def test_upload_wav_shows_the_digit(page, app_url):
    open_page(page, app_url, "Speech")
    expect(page.get_by_text("Record, upload or pick an example")).to_be_visible(timeout=60_000)
    upload(page, EXAMPLES / "7_yweweler_3.wav")
    expect(page.get_by_text("Heard “7”")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Which frames drove the answer")).to_be_visible()


def test_upload_digit_string_and_then_a_bad_file(page, app_url, tmp_path):
    open_page(page, app_url, "Speech")
    upload(page, EXAMPLES / "string_427_george.wav")
    expect(page.get_by_text("Heard “427”")).to_be_visible(timeout=90_000)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(64))
    upload(page, bad)
    wait_for_idle(page)
    expect(page.get_by_text("damaged or truncated")).to_be_visible(timeout=60_000)


def test_upload_a_word_it_does_not_know(page, app_url):
    open_page(page, app_url, "Speech")
    upload(page, next(EXAMPLES.glob("other_house_*.wav")))
    expect(page.get_by_role("heading", name="Heard speech, but not a word I know")).to_be_visible(
        timeout=90_000
    )
    expect(page.get_by_text("Heard “")).to_have_count(0)
