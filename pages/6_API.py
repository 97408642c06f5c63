"""API page: where the REST API listens, a copy-ready curl command for every route, and "try it"."""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import httpx
import streamlit as st

from pages.ui import setup_page
from pages.ui.launch import API_MOUNT_ENV
from services import http_client
from services.client import api_url

MAX_SHOWN_CHARS = 20_000  # long answers (the catalogue, waveforms) are cut in the page, not in the API

setup_page(
    "API",
    "🔌",
    "Every model of this demo is also a REST API for scripts and other services: the same code, the "
    "same results and the same limits as these pages. `make run` serves it beside the app, under /api.",
)


def served_here() -> tuple[str, str] | None:
    """(URL for the browser, URL for this server's own calls) of the API mounted on this app's port by
    the launcher (`make run`), or None when the app was started some other way."""
    mount = os.environ.get(API_MOUNT_ENV, "").strip()
    if not mount:
        return None
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(st.context.url or ""))
    port = st.get_option("server.port")
    address = st.get_option("server.address") or "127.0.0.1"
    if address in ("0.0.0.0", "::"):  # listening everywhere: this process reaches itself on loopback
        address = "127.0.0.1"
    base_path = (st.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base_path}" if base_path else ""
    local = f"http://{address}:{port}{prefix}{mount}"
    return (f"{origin}{prefix}{mount}" if origin != "://" else local), local


configured = api_url()
here = served_here()
if configured:
    base_url = call_url = configured
    st.success(
        f"Calls below go to the API configured in `DEMO_API_URL`: **{base_url}**", icon=":material/link:"
    )
elif here:
    base_url, call_url = here
    st.success(
        f"The API runs inside this app, on the same port: **{base_url}**. `make api` starts it on its own "
        f"(port 8000) for scripts that should not depend on the app.",
        icon=":material/link:",
    )
else:
    base_url = call_url = http_client.DEFAULT_API_URL
    st.info(
        f"This app was not started with `make run`, so no API runs inside it. Start one with `make api` "
        f"(it listens on {base_url}); **Try it** below calls it there.",
        icon=":material/info:",
    )

st.markdown(
    f"""
**Base URL** `{base_url}` · interactive docs at [{base_url}/docs]({base_url}/docs) · schema at
[{base_url}/openapi.json]({base_url}/openapi.json)

- Batches answer `200` with one entry per item; a bad item holds `{{"error": {{"type", "message"}}}}` in
  its own slot.
- A bad request answers `{{"error": {{"type", "message"}}}}` with `404` (unknown user, film, task or
  route), `413` (a body or batch over the limits, refused before it is read) or `422` (an invalid body
  or input a model refuses).
- Models load on the first request for their task (or all at startup with `API_PRELOAD=1`).
- Optional key: start the API with `API_KEY=<secret> make api` (or `make serve`) and every `/v1/...`
  route needs `Authorization: Bearer <secret>` or `X-API-Key: <secret>` (`401` without it); `/health`
  stays open. With `API_KEY` also set for this app, **Try it** sends it and the curl commands below
  read it from `$API_KEY`; the key itself is never shown or logged.
"""
)


@st.cache_data(show_spinner=False)
def examples() -> list[http_client.ApiExample]:
    return http_client.api_examples()


all_examples = examples()
st.subheader("Routes")
for example in all_examples:
    with st.expander(f"`{example.method} {example.path}` · {example.title}"):
        st.code(example.curl(base_url), language="bash", wrap_lines=True)
        if example.note:
            st.caption(example.note)

st.subheader("Try it")
titles = [f"{example.method} {example.path} · {example.title}" for example in all_examples]
choice = st.selectbox("Request", range(len(all_examples)), format_func=titles.__getitem__, key="api_route")
chosen = all_examples[choice]
st.code(chosen.curl(base_url), language="bash", wrap_lines=True)
if st.button("Try it", type="primary", key="api_try"):
    try:
        with http_client.open_client(call_url) as client, st.spinner(f"{chosen.method} {chosen.path} …"):
            response = chosen.send(client)
    except httpx.TransportError as err:
        st.error(http_client.unavailable_message(call_url, err), icon=":material/cloud_off:")
    else:
        seconds = response.elapsed.total_seconds() if hasattr(response, "_elapsed") else None
        timing = f" in {seconds * 1000:.0f} ms" if seconds is not None else ""
        status_line = f"HTTP {response.status_code}{timing}"
        (st.success if response.status_code < 400 else st.warning)(status_line)
        try:
            text = json.dumps(response.json(), indent=2, ensure_ascii=False)
        except ValueError:
            text = response.text
        if len(text) > MAX_SHOWN_CHARS:
            st.caption(f"{len(text):,} characters; the first {MAX_SHOWN_CHARS:,} are shown")
            text = text[:MAX_SHOWN_CHARS] + "\n…"
        st.code(text, language="json")
