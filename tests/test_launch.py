"""The launcher's start-up shortcuts keep Streamlit's behaviour: the component scan finds what
Streamlit's own scan finds (the drawing canvas is a packaged component)."""

from __future__ import annotations

import pytest
from streamlit.components.v2 import manifest_scanner

from pages.ui import launch


def test_component_scan_by_name_finds_what_the_full_scan_finds(monkeypatch):
    monkeypatch.setattr(
        manifest_scanner, "scan_component_manifests", manifest_scanner.scan_component_manifests
    )
    everything = manifest_scanner.scan_component_manifests()
    launch._component_scan_by_name()
    looked_into = []
    real = manifest_scanner._process_single_package
    monkeypatch.setattr(
        manifest_scanner, "_process_single_package", lambda dist: looked_into.append(dist) or real(dist)
    )
    named = manifest_scanner.scan_component_manifests()
    key = sorted((manifest.name, str(root)) for manifest, root in named)
    assert key == sorted((manifest.name, str(root)) for manifest, root in everything)
    assert "streamlit-drawable-canvas" in [name for name, _ in key]
    assert 0 < len(looked_into) <= 5  # Streamlit and its component packages, not every dependency


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip, deflate, br, zstd", True),  # Chromium
        ("br, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("br", False),
        ("identity", False),
        (None, False),
    ],
)
def test_gzip_only_for_requests_that_accept_it(accept_encoding, gzipped):
    headers = [] if accept_encoding is None else [(b"accept-encoding", accept_encoding.encode())]
    assert launch._accepts_gzip({"headers": headers}) is gzipped
