"""Helpers for driving the Streamlit app in Playwright."""

from __future__ import annotations


def wait_for_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)


def open_page(page, app_url: str, path: str = "") -> None:
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
    wait_for_idle(page)


def upload(page, path, index: int = 0) -> None:
    """Upload a real file through the index-th file uploader and wait for the rerun."""
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(index).set_input_files(str(path))
    page.wait_for_timeout(300)
    wait_for_idle(page)
