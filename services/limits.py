"""The request limits and defaults of every task, in one light module (no torch, no numpy).

The services enforce these (raising services.errors types), the REST API's OpenAPI schema is
generated from them (serve/api.py), and the HTTP client uses the same defaults, so a limit changes
in one place. Numbers that only a service's internals use (segmentation, windows) stay with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.errors import InputError, InputTooLargeError

MiB = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """vision and speech: files in, top-k alternatives out."""

    top_k: int  # alternatives listed per answer unless asked otherwise
    max_top_k: int
    max_batch: int  # files in one predict_batch call / one request
    max_upload_bytes: int  # one file
    max_explained: int  # files explained (saliency, waveforms) in one batch


@dataclass(frozen=True)
class TextLimits:
    max_chars: int  # one text (sentiment, similarity, summary)
    max_batch: int  # texts in one predict_batch call / one request
    max_upload_bytes: int  # the page's batch file (CSV/TXT)
    max_explained: int  # texts with word highlights in one batch (about a second each)
    summary_sentences: int  # sentences in a summary unless asked otherwise
    max_summary_sentences: int  # sentences a text may have for the summariser


@dataclass(frozen=True)
class RecommendLimits:
    k: int  # recommendations or similar films unless asked otherwise
    max_k: int
    max_batch: int  # requests in one predict_batch call
    max_ratings: int  # ratings in one request (a MovieLens user has at most 737)
    rating_min: float
    rating_max: float
    search_results: int  # films per catalogue search unless asked otherwise
    max_search_results: int
    max_query_chars: int
    max_id_chars: int  # an id given as text longer than this is refused before parsing


VISION = UploadLimits(top_k=3, max_top_k=10, max_batch=64, max_upload_bytes=20 * MiB, max_explained=64)
# max_top_k: every class of the speech model (ten digits, ten commands, "other", "silence").
SPEECH = UploadLimits(top_k=3, max_top_k=22, max_batch=64, max_upload_bytes=20 * MiB, max_explained=64)
TEXT = TextLimits(
    max_chars=20_000,
    max_batch=1_000,
    max_upload_bytes=2_000_000,
    max_explained=16,
    summary_sentences=3,
    max_summary_sentences=400,
)
RECOMMEND = RecommendLimits(
    k=10,
    max_k=50,
    max_batch=256,
    max_ratings=1000,
    rating_min=1.0,
    rating_max=5.0,
    search_results=20,
    max_search_results=200,
    max_query_chars=200,
    max_id_chars=12,
)
NPY_MEDIA_TYPE = "application/x-npy"  # how a picture travels as pixels (the canvas) over HTTP
MAX_ARRAY_SIDE = 4096  # pixels per side of a picture handed over as an array (the drawing canvas)


def check_whole(value: Any, name: str, low: int, high: int) -> int:
    """An option that must be a whole number in [low, high]; anything else is an InputError."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {value!r}") from None
    if not math.isfinite(number) or not number.is_integer():
        raise InputError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    if not low <= number <= high:
        raise InputError(f"{name} must be from {low} to {high}, got {int(number)}")
    return int(number)


def check_batch(count: int, limit: int, what: str = "items") -> None:
    """More than `limit` items in one call is refused as a whole (InputTooLargeError)."""
    if count > limit:
        raise InputTooLargeError(f"{count} {what} in one request; the limit is {limit}")
