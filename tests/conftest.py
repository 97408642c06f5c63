"""Shared fixtures: offline mode, the real datasets when present, and a repo-root path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DEMO_DEVICE", "cpu")  # tests compare against CPU golden values

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real datasets live beside the checkout (../shared/data); DEMO_DATA_DIR points elsewhere.
SHARED_DATA = Path(os.environ.get("DEMO_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def open_tab(at, key: str, name: str):
    """Select the tab whose label ends with `name` in the lazy tabs keyed `key`, as a click does (the
    page reruns and only that tab's content runs); returns the AppTest for chaining."""
    (label,) = [t.label for t in at.tabs if t.label.endswith(f" {name}")]
    at.session_state[key] = label
    at.run()
    assert not at.exception, at.exception
    return at


def dataset_dir(name: str, required_file: str) -> Path:
    """The folder of a real dataset, or a clean skip when it is not on this machine."""
    folder = SHARED_DATA / name
    if not (folder / required_file).is_file():
        pytest.skip(f"dataset {name} not found at {folder} (set DEMO_DATA_DIR to run this test)")
    return folder
