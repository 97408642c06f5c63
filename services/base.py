"""The one contract every task service follows, in the spirit of Hugging Face pipelines.

A service turns raw input into a plain result in three stages:

    preprocess(item, **options)   raw input → whatever `_forward` needs; bad input raises InputError
    _forward(prepared_list)       one batched pass through the model (device-agnostic, no validation)
    postprocess(prepared, output, **options) → a dict of strings, numbers, lists and dicts

`predict(item)` runs one item and raises the item's InputError; `predict_batch(items)` runs many in
one `_forward` and puts `{"error": {"type", "message"}}` in the slot of each bad item, so one broken
upload never hides the other results.

Every result carries the same fields, whatever the task:

    label           the answer as a string (a digit string, "positive", a film title), or None
    confidence      probability of `label` in [0, 1]
    top_k           [{"label", "score"}], best first
    low_confidence  True when the answer should be read as a guess
    latency_ms      wall time for this item (its share of a batched forward)
    stages_ms       {"preprocess", "forward", "postprocess"} in milliseconds
    notes           list of short human-readable remarks about the input or the answer

Tasks add their own fields beside these (e.g. vision's `digits`, sentiment's `sentences`).

Services import no streamlit, fastapi or ray: the pages, the REST API, Ray Serve, the CLIs and the
benchmarks all call the same objects. `cached_loader` gives each task one thread-safe
`load_service()` that builds its service once per process.
"""

from __future__ import annotations

import functools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from services.errors import InputError, InputTooLargeError

__all__ = ["Service", "cached_loader", "error_entry", "RESULT_FIELDS"]

RESULT_FIELDS = ("label", "confidence", "top_k", "low_confidence", "latency_ms", "stages_ms", "notes")

ServiceT = TypeVar("ServiceT", bound="Service")


def error_entry(err: InputError) -> dict[str, Any]:
    """The per-item error shape shared by predict_batch, the CLIs and the REST API."""
    return {"error": {"type": type(err).__name__, "message": str(err)}}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Service(ABC):
    """Base of the four task services. Subclasses implement the three stages and `info()`.

    Instances are immutable after loading and keep no per-request state, so one instance serves
    every session, thread and request of the process.
    """

    task: ClassVar[str]  # "vision", "speech", "sentiment", "recommend"
    max_batch: ClassVar[int] = 64  # items per predict_batch call; more is refused as too large

    # ---- the three stages: subclasses implement these -------------------------------------
    @abstractmethod
    def preprocess(self, item: Any, **options: Any) -> Any:
        """Raw input → what `_forward` needs; bad input raises an InputError."""

    @abstractmethod
    def _forward(self, prepared: Sequence[Any], **options: Any) -> Sequence[Any]:
        """One output per prepared item, computed in as few model calls as possible."""

    @abstractmethod
    def postprocess(self, prepared: Any, output: Any, **options: Any) -> dict[str, Any]:
        """One prepared item and its model output → a plain result with the common fields."""

    # ---- facts for pages, the API and the model cards -------------------------------------
    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Card facts read from the bundle and metrics.json: name, parameters, data, metrics, limits."""

    @abstractmethod
    def self_test(self) -> dict[str, Any]:
        """Answer a bundled example: {"input", "output", "latency_ms"} for the home page."""

    def warm_up(self) -> None:  # noqa: B027 - an optional hook: most services defer nothing
        """Build what a service defers to keep its start short (nothing by default).

        Called in the background once every model answers, so that the first request which needs
        the deferred part (e.g. the language model's explanations) does not wait for it."""

    # ---- public calls ---------------------------------------------------------------------
    def predict(self, item: Any, **options: Any) -> dict[str, Any]:
        """One item → one result; bad input raises its InputError."""
        return self._run([item], options, raise_errors=True)[0]

    def predict_batch(self, items: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        """Many items, one batched forward; a bad item gets `{"error": {...}}` in its own slot."""
        if len(items) > self.max_batch:
            raise InputTooLargeError(f"{len(items)} items in one batch; the limit is {self.max_batch}")
        return self._run(list(items), options, raise_errors=False)

    def _run(self, items: list[Any], options: dict[str, Any], raise_errors: bool) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(items)
        prepared, slots, prep_s = [], [], []
        for slot, item in enumerate(items):
            started = time.perf_counter()
            try:
                prepared.append(self.preprocess(item, **options))
            except InputError as err:
                if raise_errors:
                    raise
                results[slot] = error_entry(err)
                continue
            slots.append(slot)
            prep_s.append(time.perf_counter() - started)
        if prepared:
            started = time.perf_counter()
            outputs = self._forward(prepared, **options)
            forward_share = (time.perf_counter() - started) / len(prepared)  # batched: split evenly
            for slot, prep, output, pre_s in zip(slots, prepared, outputs, prep_s, strict=True):
                started = time.perf_counter()
                try:
                    result = self.postprocess(prep, output, **options)
                except InputError as err:  # e.g. a request whose ids only resolve against the model
                    if raise_errors:
                        raise
                    results[slot] = error_entry(err)
                    continue
                post_s = time.perf_counter() - started
                result.setdefault("notes", [])
                result["stages_ms"] = {
                    "preprocess": _ms(pre_s),
                    "forward": _ms(forward_share),
                    "postprocess": _ms(post_s),
                }
                result["latency_ms"] = round(_ms(pre_s + forward_share + post_s), 2)
                results[slot] = result
        return results  # type: ignore[return-value]


def cached_loader(build: Callable[[], ServiceT]) -> Callable[[], ServiceT]:
    """Wrap a builder into a thread-safe `load_service()` that builds once per process.

    Concurrent first calls wait on one lock and all receive the same instance. `is_loaded()` tells
    (without loading) whether the instance exists; `cache_clear()` drops it, for tests.
    """
    lock = threading.Lock()
    holder: list[ServiceT] = []

    @functools.wraps(build)
    def load_service() -> ServiceT:
        if holder:
            return holder[0]
        with lock:
            if not holder:
                from models.runtime import configure_inference_threads  # torch: only when a model loads

                configure_inference_threads()
                holder.append(build())
        return holder[0]

    def is_loaded() -> bool:
        return bool(holder)

    def cache_clear() -> None:
        with lock:
            holder.clear()

    load_service.is_loaded = is_loaded  # type: ignore[attr-defined]
    load_service.cache_clear = cache_clear  # type: ignore[attr-defined]
    return load_service
