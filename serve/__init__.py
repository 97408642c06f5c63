"""Serving layer: the REST API (serve.api, FastAPI) over the same in-process services the pages use."""
