"""The one contract every task service follows, in the spirit of Hugging Face pipelines.

A service turns raw input into a plain result in three stages:

    preprocess(item, **options)   raw input → whatever `_forward` needs; bad input raises InputError
    _forward(prepared_list)       one batched pass through the model (device-agnostic, no validation)
    postprocess(prepared, output, **options) → a dict of strings, numbers, lists and dicts

`predict(item, **options)` runs one item and raises the item's InputError; `predict_batch(items,
**options)` takes the same options, runs many in one `_forward` and puts `{"error": {"type",
"message"}}` in the slot of each bad item, so one broken upload never hides the other results.

Options go to the stage that uses them, in the spirit of Hugging Face's `_sanitize_parameters`: a
stage receives an option when its signature names it (vision's `top_k` goes to `postprocess`,
`explain` to `_forward` and `postprocess`); an option no stage names is refused as an InputError.
The limits every service shares are checked here, from services/limits.py through the task table
(services/tasks.py): items per batch, `top_k`, and items explained per batch.

Every result of `predict`, `predict_array` and `predict_batch` (an `Answer`) carries the same fields,
whatever the task:

    label           the answer as a string (a digit string, "positive", a film title), or None
    confidence      probability of `label` in [0, 1]
    top_k           [{"label", "score"}], best first
    low_confidence  True when the answer should be read as a guess
    latency_ms      wall time for this item (its share of a batched forward)
    stages_ms       {"preprocess", "forward", "postprocess"} in milliseconds
    notes           list of short human-readable remarks about the input or the answer

Tasks add their own fields beside these (e.g. vision's `digits`, sentiment's `sentences`).

The other public methods (sentiment's `similarity` and `summarize`, the recommender's
`similar_items`, `search`, ...) do not run the three stages and return a `Report`: a task-specific
dict whose only common fields are `notes` and `latency_ms` (no stage times: there are no stages).
Which method returns which is the typed contract in services/tasks.py.

Services import no streamlit, fastapi or ray: the pages, the REST API, Ray Serve, the CLIs and the
benchmarks all call the same objects. `cached_loader` gives each task one thread-safe
`load_service()` that builds its service once per process.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypedDict, TypeVar

from services import limits
from services.errors import InputError, InputTooLargeError, error_entry

__all__ = ["Service", "cached_loader", "error_entry", "json_ready", "Answer", "Report", "RESULT_FIELDS"]

RESULT_FIELDS = ("label", "confidence", "top_k", "low_confidence", "latency_ms", "stages_ms", "notes")
STAGES = ("preprocess", "_forward", "postprocess")

ServiceT = TypeVar("ServiceT", bound="Service")


class Answer(TypedDict, total=False):
    """What predict / predict_array / predict_batch return for one item (tasks add fields)."""

    label: str | None
    confidence: float
    top_k: list[dict[str, Any]]
    low_confidence: bool
    latency_ms: float
    stages_ms: dict[str, float]
    notes: list[str]


class Report(TypedDict, total=False):
    """What the methods outside the three stages return (similarity, summaries, similar films...)."""

    notes: list[str]
    latency_ms: float


def json_ready(value: Any) -> Any:
    """A value json.dumps accepts: numpy → lists and numbers, non-finite floats → None, keys → str."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars, without numpy
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@functools.cache
def _stage_parameters(service_class: type) -> dict[str, frozenset[str]]:
    """Each stage's named options (keyword parameters other than the item itself)."""
    named = {}
    for stage in STAGES:
        parameters = list(inspect.signature(getattr(service_class, stage)).parameters.values())[2:]
        named[stage] = frozenset(
            p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
    return named


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Service(ABC):
    """Base of the four task services. Subclasses implement the three stages and `info()`.

    Instances are immutable after loading and keep no per-request state, so one instance serves
    every session, thread and request of the process.
    """

    task: ClassVar[str]  # a name in services/tasks.py
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

    # ---- options: each to the stage that uses it -------------------------------------------
    def _sanitize_parameters(self, **options: Any) -> dict[str, dict[str, Any]]:
        """{stage: its options}; an option no stage names, or a shared limit broken, is an InputError."""
        task_limits = _task_limits(self.task)
        if "top_k" in options and hasattr(task_limits, "max_top_k"):
            options["top_k"] = limits.check_whole(options["top_k"], "top_k", 1, task_limits.max_top_k)
        named = _stage_parameters(type(self))
        unknown = sorted(set(options) - set().union(*named.values()))
        if unknown:
            raise InputError(f"{self.task} takes no option {', '.join(map(repr, unknown))}")
        return {stage: {k: v for k, v in options.items() if k in named[stage]} for stage in STAGES}

    def check_batch_size(self, count: int, explain: bool = False) -> None:
        """Refuse a whole batch over the limits: items per call, and items explained per call."""
        limits.check_batch(count, self.max_batch)
        most_explained = getattr(_task_limits(self.task), "max_explained", None)
        if explain and most_explained is not None and count > most_explained:
            raise InputTooLargeError(
                f"{count} items with explain=true; explanations are limited to {most_explained} per request"
            )

    # ---- public calls ---------------------------------------------------------------------
    def predict(self, item: Any, **options: Any) -> dict[str, Any]:
        """One item → one result; bad input raises its InputError."""
        return self._run([item], self._sanitize_parameters(**options), raise_errors=True)[0]

    def predict_batch(self, items: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        """Many items, one batched forward; a bad item gets `{"error": {...}}` in its own slot."""
        self.check_batch_size(len(items), bool(options.get("explain")))
        return self._run(list(items), self._sanitize_parameters(**options), raise_errors=False)

    def _run(
        self, items: list[Any], options: dict[str, dict[str, Any]], raise_errors: bool
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(items)
        prepared, slots, prep_s = [], [], []
        for slot, item in enumerate(items):
            started = time.perf_counter()
            try:
                prepared.append(self.preprocess(item, **options["preprocess"]))
            except InputError as err:
                if raise_errors:
                    raise
                results[slot] = error_entry(err)
                continue
            slots.append(slot)
            prep_s.append(time.perf_counter() - started)
        if prepared:
            started = time.perf_counter()
            outputs = self._forward(prepared, **options["_forward"])
            forward_share = (time.perf_counter() - started) / len(prepared)  # batched: split evenly
            for slot, prep, output, pre_s in zip(slots, prepared, outputs, prep_s, strict=True):
                started = time.perf_counter()
                try:
                    result = self.postprocess(prep, output, **options["postprocess"])
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


def _task_limits(task: str) -> Any:
    from services.tasks import TASKS  # the table imports nothing heavy, but names the services

    return TASKS[task].limits if task in TASKS else None


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
