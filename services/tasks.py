"""The four tasks, in one table: every layer that lists tasks reads `TASKS` from here.

A `TaskSpec` names a task and says everything the other layers need to know about it:

- the pages: `title`, `icon`, `page` (its Streamlit page file) and `blurb` for the home page and the
  navigation;
- the services: `module` (the package whose `load_service()` builds the service), `protocol` (the
  typed public contract the service, the HTTP client and the Ray proxy all follow; its methods are the
  only ones a remote caller may call), `limits` (services/limits.py) and `load_rank` (preload order);
- the REST API and Ray Serve: `routes` (the paths that reach the task) and `batched` (whether Ray
  Serve merges concurrent `predict_batch` calls into one forward pass);
- the model cards and the `models` CLI: `card_title`, `data_dir` (the dataset folder under
  --data-dir) and `references` (published figures to compare with).

Adding a task means a row here, a service, a model package and a page. Importing this module is
cheap (no torch): the home page, the HTTP client and `python -m models` read it before any model loads.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services import limits


# ---- the typed contracts (services/base.py explains the result shape) -------------------------------
class TaskService(Protocol):
    def info(self) -> dict[str, Any]:
        """Card facts: name, parameters, data, metrics, limits."""
        ...

    def self_test(self) -> dict[str, Any]:
        """{"input", "output", "latency_ms"} for a bundled example."""
        ...


class VisionApi(TaskService, Protocol):
    def predict(
        self, data: bytes, *, top_k: int = limits.VISION.top_k, explain: bool = False
    ) -> dict[str, Any]: ...

    def predict_array(
        self, array: Any, *, top_k: int = limits.VISION.top_k, explain: bool = False
    ) -> dict[str, Any]: ...

    def predict_batch(
        self, items: Sequence[bytes], *, top_k: int = limits.VISION.top_k, explain: bool = False
    ) -> list[dict[str, Any]]: ...


class SpeechApi(TaskService, Protocol):
    def predict(
        self, data: bytes, *, top_k: int = limits.SPEECH.top_k, explain: bool = False
    ) -> dict[str, Any]: ...

    def predict_batch(
        self, items: Sequence[bytes], *, top_k: int = limits.SPEECH.top_k, explain: bool = False
    ) -> list[dict[str, Any]]: ...


class NlpApi(TaskService, Protocol):
    def predict(self, text: Any, *, explain: bool = False) -> dict[str, Any]: ...

    def predict_batch(self, texts: Sequence[Any], *, explain: bool = False) -> list[dict[str, Any]]: ...

    def similarity(self, a: Any, b: Any) -> dict[str, Any]: ...

    def summarize(self, text: Any, n_sentences: int = limits.TEXT.summary_sentences) -> dict[str, Any]: ...


class RecommendApi(TaskService, Protocol):
    # In-process an unknown user or film gets flagged popular picks; the services also take
    # `strict_ids=True`, which the REST API passes: there an unknown id is a 404.
    def predict(self, request: Any) -> dict[str, Any]: ...

    def predict_batch(self, requests: Sequence[Any]) -> list[dict[str, Any]]: ...

    def similar_items(
        self, item_id: Any, k: int = limits.RECOMMEND.k, genre: str | None = None
    ) -> dict[str, Any]: ...

    def user_profile(self, user_id: Any) -> dict[str, Any]: ...

    def search(self, query: str, limit: int = limits.RECOMMEND.search_results) -> dict[str, Any]: ...

    def item_map(self) -> list[dict[str, Any]]: ...

    def catalogue(self) -> list[dict[str, Any]]: ...


# ---- the table ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskSpec:
    name: str  # the task's id in URLs, metrics and CLIs
    title: str
    icon: str
    page: str  # the Streamlit page file, relative to the repository root
    blurb: str  # what the page offers, for the home page
    module: str  # services package with `load_service()`
    service_class: str  # the Service subclass's name in `module`
    protocol: type
    limits: Any
    routes: tuple[str, ...]
    batched: bool  # Ray Serve merges concurrent predict_batch calls
    load_rank: int  # background preload order: fastest first, so cards fill in early
    card_title: str
    data_dir: str  # dataset folder under --data-dir for `python -m models train|evaluate`
    references: tuple[tuple[str, str], ...] = field(default=())

    @property
    def methods(self) -> tuple[str, ...]:
        """The public methods of the contract: the only names a remote caller may call."""
        return public_methods(self.protocol)

    def options(self, method: str) -> dict[str, inspect.Parameter]:
        """A method's options with their defaults (the parameters that have one)."""
        signature = inspect.signature(getattr(self.protocol, method))
        return {
            name: parameter
            for name, parameter in signature.parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }

    def default(self, method: str, option: str) -> Any:
        return self.options(method)[option].default

    def service_type(self) -> type:
        """The Service subclass (imports the task's module, and so torch)."""
        import importlib

        return getattr(importlib.import_module(self.module), self.service_class)


def public_methods(protocol: type) -> tuple[str, ...]:
    names = {
        name
        for klass in protocol.__mro__
        if klass not in (object, Protocol) and getattr(klass, "_is_protocol", False)
        for name, value in vars(klass).items()
        if not name.startswith("_") and callable(value)
    }
    return tuple(sorted(names))


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="vision",
            title="Vision",
            icon="🔢",
            page="pages/1_Vision.py",
            blurb="A CNN trained by this project reads handwritten or printed digits and whole numbers "
            "from photos, uploads, the camera or a canvas.",
            module="services.vision",
            service_class="VisionService",
            protocol=VisionApi,
            limits=limits.VISION,
            routes=("/v1/vision", "/v1/vision/array"),
            batched=True,
            load_rank=0,
            card_title="Vision · CNN digit recognizer (MNIST)",
            data_dir="mnist",
            references=(
                ("LeNet-5 (LeCun et al., 1998)", "accuracy 0.9905"),
                ("classic Keras Conv32-64-64 CNN", "≈ 0.99"),
            ),
        ),
        TaskSpec(
            name="nlp",
            title="Language",
            icon="💬",
            page="pages/2_Language.py",
            blurb="MiniLM fine-tuned for sentiment, with word-level explanations, similarity and summaries.",
            module="services.nlp",
            service_class="NlpService",
            protocol=NlpApi,
            limits=limits.TEXT,
            routes=("/v1/sentiment", "/v1/similarity", "/v1/summary"),
            batched=True,
            load_rank=3,
            card_title="Language · MiniLM-L6 sentiment (SST-2)",
            data_dir="sst2",
            references=(
                ("DistilBERT (GLUE dev)", "accuracy 0.913"),
                ("MiniLM-L6-H384 (GLUE dev)", "accuracy 0.915"),
            ),
        ),
        TaskSpec(
            name="speech",
            title="Speech",
            icon="🎙️",
            page="pages/3_Speech.py",
            blurb="A recurrent network recognises spoken digits, digit strings and ten voice commands "
            "(yes, no, up, down, left, right, on, off, stop, go), and says so when a word is not one it knows.",
            module="services.speech",
            service_class="SpeechService",
            protocol=SpeechApi,
            limits=limits.SPEECH,
            routes=("/v1/speech",),
            batched=True,
            load_rank=2,
            card_title="Speech · digits and voice commands (recurrent network, FSDD + Speech Commands)",
            data_dir="fsdd",
            references=(("published FSDD results", "accuracy 0.97–0.973"),),
        ),
        TaskSpec(
            name="recommend",
            title="Recommendation",
            icon="🎬",
            page="pages/4_Recommendation.py",
            blurb="Matrix factorization on MovieLens-100K recommends films from a handful of your ratings.",
            module="services.recommend",
            service_class="RecommendService",
            protocol=RecommendApi,
            limits=limits.RECOMMEND,
            routes=(
                "/v1/recommend",
                "/v1/recommend/batch",
                "/v1/recommend/similar/{item_id}",
                "/v1/recommend/search",
                "/v1/recommend/users/{user_id}/profile",
                "/v1/recommend/map",
                "/v1/recommend/catalogue",
            ),
            batched=False,  # a request is a few small matrix products: nothing to merge
            load_rank=1,
            card_title="Recommendation · biased matrix factorization (MovieLens-100K)",
            data_dir="movielens-100k",
            references=(("Surprise SVD, 5-fold", "RMSE 0.934"), ("Surprise SVD++, 5-fold", "RMSE 0.919")),
        ),
    )
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)
LOAD_ORDER: tuple[str, ...] = tuple(sorted(TASKS, key=lambda name: TASKS[name].load_rank))


def spec(task: str) -> TaskSpec:
    """The task's row; an unknown name is a KeyError that lists the known ones."""
    try:
        return TASKS[task]
    except KeyError:
        raise KeyError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}") from None
