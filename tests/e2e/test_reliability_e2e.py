"""Bad files in the real browser: each gets a clear message, and the page keeps working afterwards."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser import open_page, upload
from tests.e2e.conftest import REPO_ROOT

TIMEOUT_MS = 90_000


def test_corrupt_image_then_a_good_one(page, app_url, tmp_path):
    corrupt = tmp_path / "holiday.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))  # a JPEG header and nothing else
    open_page(page, app_url, "Vision")
    upload(page, corrupt)
    expect(page.get_by_text(re.compile(r"damaged|truncated|not an image", re.IGNORECASE))).to_be_visible(
        timeout=TIMEOUT_MS
    )
    upload(page, REPO_ROOT / "models" / "vision" / "examples" / "print_5.jpg")
    expect(page.get_by_text("Results for 2 images (1 recognised)")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)


def test_text_file_named_wav_then_a_good_clip(page, app_url, tmp_path):
    fake = tmp_path / "meeting.wav"
    fake.write_text("These are my meeting notes, not a recording.\n" * 20)
    open_page(page, app_url, "Speech")
    upload(page, fake)
    expect(page.get_by_text(re.compile("not an audio file we can read"))).to_be_visible(timeout=TIMEOUT_MS)
    upload(page, REPO_ROOT / "models" / "speech" / "examples" / "7_yweweler_3.wav")
    expect(page.get_by_text("Heard “7”")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)
