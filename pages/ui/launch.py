"""`python -m pages.ui.launch [streamlit flags]`: `streamlit run app.py`, with the models loading
from the moment the server starts rather than at the first visit.

`make run` and the browser tests start the app this way. Loading holds Python's lock for seconds
(importing torch alone is ~3 s), which starves the web server if it runs while the first visitor's
page is being served: so the home page starts the loading once it has rendered, and this launcher
starts it a few seconds after the server is up when nobody has visited yet.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"
SERVER_WAIT_S = 15.0  # load anyway after this long, e.g. if Streamlit's runtime API changes
IDLE_START_S = 3.0  # with no visitor yet, start loading this long after the server is up


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


def main() -> None:
    threading.Thread(target=_load_when_server_is_up, name="preload-trigger", daemon=True).start()
    _no_config_polling()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
