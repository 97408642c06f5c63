"""`python -m pages.ui.launch [streamlit flags]`: `streamlit run app.py`, with the models loading
from the moment the server starts rather than at the first visit, and the REST API (serve/api.py)
mounted under /api on the same port (Streamlit's `st.App` takes extra Starlette routes), so the API
page works after `make run` alone.

`make run` and the browser tests start the app this way. Loading holds Python's lock for seconds
(importing torch alone is ~3 s), which starves the web server if it runs while the first visitor's
page is being served: so the home page starts the loading once it has rendered, and this launcher
starts it a few seconds after the server is up when nobody has visited yet. It also spares the
server two costs Streamlit pays for every visitor: polling the config files, and reading each of the
frontend's files from disk on every request (issue 15, `make loadtest-ui`); and, at start, reading the
metadata of every installed package in search of custom components.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"
API_MOUNT = "/api"  # the REST API's prefix on the app's own port (/api/docs, /api/v1/...)
API_MOUNT_ENV = "DEMO_API_MOUNT"  # tells the API page where the API is mounted in this process
SERVER_WAIT_S = 15.0  # load anyway after this long, e.g. if Streamlit's runtime API changes
IDLE_START_S = 3.0  # with no visitor yet, start loading this long after the server is up
COMPRESSIBLE_ASSET_SUFFIXES = (".js", ".css", ".json", ".svg", ".map", ".txt", ".html", ".ttf")
COMPONENT_PACKAGE_PREFIXES = ("streamlit", "st_")  # normalised names of packages that may hold components


def _load_when_server_is_up() -> None:
    from streamlit.runtime import Runtime, RuntimeState

    deadline = time.monotonic() + SERVER_WAIT_S
    while time.monotonic() < deadline:
        if Runtime.exists() and Runtime.instance().state not in (RuntimeState.INITIAL, RuntimeState.STOPPING):
            break
        time.sleep(0.05)
    time.sleep(IDLE_START_S)
    from services.preload import start_background_loading

    start_background_loading()


def _no_config_polling() -> None:
    """Streamlit polls each config.toml five times a second for live edits (not configurable). With the
    file watcher off, code and config changes need a restart anyway; the polling thread cost ~15 % of
    the server's CPU per visitor (py-spy), so it is not installed."""
    from streamlit.web import bootstrap

    if hasattr(bootstrap, "_install_config_watchers"):
        bootstrap._install_config_watchers = lambda *args, **kwargs: None


def _component_scan_by_name() -> None:
    """At start Streamlit looks for installed "v2" custom components by reading the metadata of every
    installed package (its name, summary and requirements), which was a third of this app's server
    start on two cores (py-spy: ~0.5 s for the ~250 packages that torch, transformers and Ray bring).
    Such component packages are named after Streamlit ("streamlit-…", "st-…"); this app uses none
    beyond its pinned requirements, so only packages with such names are looked into."""
    import importlib.metadata

    from streamlit.components.v2 import manifest_scanner as scanner

    if not hasattr(scanner, "scan_component_manifests") or not hasattr(scanner, "_process_single_package"):
        return

    def scan_named_packages(max_workers: int | None = None) -> list:
        found = []
        for dist in importlib.metadata.distributions():
            # the name from the dist-info folder, without parsing its metadata file
            name = (getattr(dist, "_normalized_name", None) or dist.name or "").lower().replace("-", "_")
            if name.startswith(COMPONENT_PACKAGE_PREFIXES):
                manifest = scanner._process_single_package(dist)
                if manifest:
                    found.append(manifest)
        return found

    scanner.scan_component_manifests = scan_named_packages


def _accepts_gzip(scope) -> bool:
    """Whether the request's Accept-Encoding lists gzip (or "*") with a quality above zero."""
    for name, value in scope.get("headers", []):
        if name.lower() != b"accept-encoding":
            continue
        for coding in value.decode("latin-1").lower().split(","):
            token, _, params = coding.partition(";")
            if token.strip() not in ("gzip", "*"):
                continue
            quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            try:
                if float(quality) > 0:
                    return True
            except ValueError:  # a malformed weight: read as the default, 1
                return True
    return False


def _asset_headers(path: str, cache_control: str) -> dict[str, str]:
    headers = {"Cache-Control": cache_control}
    if path.lower().endswith(COMPRESSIBLE_ASSET_SUFFIXES):
        headers["Vary"] = "Accept-Encoding"  # on every answer, compressed yet or not
    return headers


def _static_assets_from_memory() -> None:
    """Serve the frontend's hashed scripts, styles and fonts from memory after their first read.

    A first visit fetches about 80 of them; Starlette opens, stats and reads each file through worker
    threads on every request, which was most of the server's CPU per new visitor (py-spy). The files
    are content-hashed and never change while the server runs, so one read each is enough; anything
    else (index.html, the manifest, 404s) goes through Streamlit's handler as before.

    Scripts, styles and other text assets are also gzipped once, in the background, when they are
    asked for a second time; later requests from browsers that accept gzip get them compressed, so a
    visit downloads about 1 MB instead of 2.6 MB (most of it the frontend's JavaScript), which matters
    on a phone. Streamlit itself sends them uncompressed, as compressing on every request costs CPU.
    """
    import asyncio
    import gzip
    import mimetypes

    import anyio
    from starlette.responses import Response
    from streamlit.web.server.starlette import starlette_static_routes as routes

    create_handler = routes.create_streamlit_static_handler

    def gzipped(body: bytes) -> bytes | None:
        compressed = gzip.compress(body, compresslevel=6, mtime=0)
        return compressed if len(compressed) < len(body) else None

    def create_memory_handler(directory: str, base_url: str | None):
        handler = create_handler(directory, base_url)
        original_get_response = handler.get_response
        # path -> (body, gzipped body or None, media type, Cache-Control)
        kept: dict[str, tuple[bytes, bytes | None, str, str]] = {}
        compressing: set[str] = set()

        async def get_response(path: str, scope):
            if scope.get("method") != "GET":
                return await original_get_response(path, scope)
            if path not in kept:
                response = await original_get_response(path, scope)
                cache_control = response.headers.get("Cache-Control", "")
                file_path = getattr(response, "path", None)
                if response.status_code != 200 or "immutable" not in cache_control or not file_path:
                    return response
                # Read once, in a worker thread, and answer this request from memory too.
                body = await anyio.to_thread.run_sync(Path(file_path).read_bytes)
                media_type = (
                    response.media_type or mimetypes.guess_type(file_path)[0] or "application/octet-stream"
                )
                kept[path] = (body, None, media_type, cache_control)
                return Response(body, media_type=media_type, headers=_asset_headers(path, cache_control))
            body, compressed, media_type, cache_control = kept[path]
            if (
                compressed is None
                and path not in compressing
                and path.lower().endswith(COMPRESSIBLE_ASSET_SUFFIXES)
            ):
                # Compressed when a file is asked for a second time (a later visit), in the background:
                # the first visit after a start, the one a demo opens with, pays nothing for it.
                compressing.add(path)

                def compress(path: str = path, entry: tuple = kept[path]) -> None:
                    kept[path] = (entry[0], gzipped(entry[0]), *entry[2:])

                asyncio.get_running_loop().run_in_executor(None, compress)
            headers = _asset_headers(path, cache_control)
            if compressed is not None and _accepts_gzip(scope):
                headers["Content-Encoding"] = "gzip"
                return Response(compressed, media_type=media_type, headers=headers)
            return Response(body, media_type=media_type, headers=headers)

        handler.get_response = get_response
        return handler

    routes.create_streamlit_static_handler = create_memory_handler


def config_flags(argv: list[str]) -> dict[str, object]:
    """`--server.port 8501 --server.headless=true` → {"server.port": 8501, "server.headless": True},
    typed as `streamlit run` types its flags. Raises SystemExit on an unknown option or a stray word."""
    from streamlit import config

    options: dict[str, object] = {}
    words = list(argv)
    while words:
        word = words.pop(0)
        if not word.startswith("--"):
            raise SystemExit(
                f"unexpected argument {word!r}: give Streamlit options as --section.option value"
            )
        name, has_value, value = word[2:].partition("=")
        if not has_value:
            if not words:
                raise SystemExit(f"--{name} needs a value")
            value = words.pop(0)
        option = config._config_options_template.get(name)
        if option is None:
            raise SystemExit(f"unknown Streamlit option --{name}")
        if option.type is bool:
            options[name] = value.strip().lower() in ("1", "true", "yes", "on")
        elif option.type in (int, float):
            options[name] = option.type(value)
        else:
            options[name] = value
    return options


def streamlit_app():
    """The Streamlit app with the REST API (serve/api.py) mounted at API_MOUNT on the same server, so
    `make run` alone serves both: the API page's "Try it" and its /docs link answer on the app's port."""
    from starlette.routing import Mount
    from streamlit.starlette import App

    os.environ[API_MOUNT_ENV] = API_MOUNT
    return App(str(APP), routes=[Mount(API_MOUNT, app=_api_on_first_request)])


_API: list = []  # serve.api's app, imported by the first request for it


async def _api_on_first_request(scope, receive, send) -> None:
    """The REST API, imported on its first request (in a worker thread, so the server keeps answering):
    importing it at start would delay the app's first page, which the launcher exists to avoid."""
    if not _API:
        import importlib

        import anyio

        module = await anyio.to_thread.run_sync(importlib.import_module, "serve.api")
        _API.append(module.app)
    await _API[0](scope, receive, send)


def _navigation_from_the_first_visit() -> None:
    """app.py declares its pages with st.navigation, but a folder named pages/ sits beside it, so until
    some session has run app.py Streamlit serves a first visit to /Vision in its legacy mode (the page
    alone, a sidebar calling the home page "app"). Streamlit's own st.navigation sets this class flag
    on its first call; setting it before the server starts gives every visit the app's navigation."""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


def main() -> None:
    threading.Thread(target=_load_when_server_is_up, name="preload-trigger", daemon=True).start()
    _no_config_polling()
    _component_scan_by_name()
    _static_assets_from_memory()
    _navigation_from_the_first_visit()
    flags = config_flags(sys.argv[1:])
    sys.argv = [str(APP)]  # the pages see no launcher flags
    streamlit_app().run(config=flags)


if __name__ == "__main__":
    main()
