"""Browser tests: start the real app on a free loopback port and drive the system Chromium.

Without Chromium these tests skip, unless E2E_REQUIRED=1 (set by CI), where the skip is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from bench.app_server import CHROMIUM_ARGS, start_app, stop_app

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
STARTUP_TIMEOUT_S = 120

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _require_chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    message = "system Chromium not found (apt-get install chromium)"
    if os.environ.get("E2E_REQUIRED") == "1":
        pytest.fail(message + " and E2E_REQUIRED=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def readme_screenshots(tmp_path_factory) -> Path:
    """Where the README's pictures go: the committed folder under `make screenshots` (SCREENSHOTS=1),
    otherwise a temporary one, so a test run never leaves the checkout modified."""
    if os.environ.get("SCREENSHOTS") == "1":
        folder = REPO_ROOT / ".github" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": _require_chromium(),
        "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS],
    }


@pytest.fixture(scope="session")
def app_url() -> str:
    """The running app's base URL; the server lives for the whole test session."""
    _require_chromium()
    log = tempfile.NamedTemporaryFile("w+", prefix="e2e-streamlit-", suffix=".log", delete=False)
    try:
        server, url = start_app(log=log, timeout_s=STARTUP_TIMEOUT_S)
    except RuntimeError as err:
        log.seek(0)
        pytest.fail(f"{err}:\n{log.read()[-3000:]}", pytrace=False)
    yield url
    stop_app(server)


@pytest.fixture
def phone(browser):
    """A page in a fresh 390×844 touch context, as a phone shows the app (retina scale for screenshots)."""
    from tests.e2e.browser import PHONE

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    yield page
    context.close()
