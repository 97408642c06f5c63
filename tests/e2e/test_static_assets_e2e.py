"""The launcher serves the frontend's hashed assets from memory (pages/ui/launch.py): the bytes and
headers must be exactly what Streamlit's own handler sends, on the first request and on every later one."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import streamlit


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_hashed_assets_are_the_files_with_their_headers_every_time(app_url):
    _, index_headers, index = _get(app_url + "/")
    assert "no-cache" in index_headers["cache-control"]  # the page itself is never kept
    scripts = re.findall(r'src="\.?/?(static/js/[^"]+\.js)"', index.decode())
    assert scripts, index[:500]
    on_disk = (Path(streamlit.__file__).parent / "static" / scripts[0]).read_bytes()
    answers = [_get(f"{app_url}/{scripts[0]}") for _ in range(3)]
    first_type = answers[0][1]["content-type"]
    assert "javascript" in first_type
    for status, headers, body in answers:
        assert status == 200 and body == on_disk
        assert headers["content-type"] == first_type
        assert "immutable" in headers["cache-control"]
        assert int(headers["content-length"]) == len(on_disk)
    status, headers, body = _get(f"{app_url}/{scripts[0]}", method="HEAD")
    assert status == 200 and not body and "immutable" in headers["cache-control"]


def test_an_unknown_static_path_still_gets_the_app_page(app_url):
    status, headers, body = _get(app_url + "/static/js/no-such-file.0000.js")
    assert status == 200 and b"<html" in body.lower() and "no-cache" in headers["cache-control"]


def test_scripts_are_sent_gzipped_to_browsers_that_accept_it(app_url):
    import gzip
    import time

    _, _, index = _get(app_url + "/")
    script = re.findall(r'src="\.?/?(static/js/[^"]+\.js)"', index.decode())[0]
    on_disk = (Path(streamlit.__file__).parent / "static" / script).read_bytes()
    _get(f"{app_url}/{script}")  # the first read; a second request has the copy made, in the background
    for _ in range(50):
        request = urllib.request.Request(f"{app_url}/{script}", headers={"Accept-Encoding": "gzip, br"})
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            body = response.read()
        if headers.get("content-encoding") == "gzip":
            break
        time.sleep(0.1)
    assert headers.get("content-encoding") == "gzip", headers
    assert gzip.decompress(body) == on_disk
    assert len(body) < len(on_disk) / 2
    assert headers["vary"] == "Accept-Encoding" and "immutable" in headers["cache-control"]
    refused = urllib.request.Request(f"{app_url}/{script}", headers={"Accept-Encoding": "gzip;q=0"})
    with urllib.request.urlopen(refused, timeout=30) as response:
        assert "content-encoding" not in {k.lower() for k in response.headers} and response.read() == on_disk
