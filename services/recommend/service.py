"""RecommendService: the recommender behind the common service contract (services.base.Service).

    predict({"ratings": {item_id: stars}, "k": 10, "genre": None})   a new user, folded in
    predict({"user": 42, "k": 10})                                    a MovieLens user
    similar_items(item_id, k), user_profile(user_id), search(query), item_map(), catalogue()

Popularity fallback (Surprise's `was_impossible`, made useful): when there is nothing personal to go
on (an unknown user id, no usable ratings, an unknown item for "more like this") the result lists the
most-rated films, with `"fallback": "popularity"`, a `"reason"` and `low_confidence: true`.

Existing users' rating histories are MovieLens data and do not ship. When the dataset is on the
machine ($DEMO_DATA_DIR, or ../shared/data/movielens-100k) a known user is folded in from their full
history (profile, explanations, already-rated films excluded); without it the trained user vector is
used and the result says that rated films could not be excluded.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from models.recommend import GENRES, MF_MOVIELENS_100K, RecommenderModel
from models.recommend.data import default_data_dir
from models.recommend.neighbours import SHRINK as NEIGHBOUR_SHRINK
from models.recommend.neighbours import load_neighbours
from models.runtime import inference_context, select_device
from services import limits
from services.base import Service, cached_loader
from services.errors import NotOnThisMachineError, UnknownIdError
from services.recommend.catalogue import CatalogueIndex, display_title
from services.recommend.examples import example_inputs
from services.recommend.explanations import Explanation, explain
from services.recommend.history import History, load_history
from services.recommend.inputs import (
    DEFAULT_K,
    MAX_BATCH,
    MAX_K,
    MAX_RATINGS,
    RATING_MAX,
    RATING_MIN,
    RatingsInput,
    Request,
    check_genre,
    check_k,
    check_limit,
    check_query,
    check_ratings,
    request_fields,
    whole_number,
)
from services.recommend.item_map import build_item_map
from services.recommend.scoring import (
    MIN_RATINGS_TO_RECOMMEND,
    ModelArrays,
    UserScores,
    allowed_mask,
    genre_masks,
    two_stage_top,
)

logger = logging.getLogger(__name__)

SEARCH_LIMIT = limits.RECOMMEND.search_results


def _stars_to_confidence(stars: float) -> float:
    """A predicted 1–5 rating mapped to 0..1, the contract's confidence scale."""
    return round(float(np.clip((stars - RATING_MIN) / (RATING_MAX - RATING_MIN), 0.0, 1.0)), 4)


class RecommendService(Service):
    """Loaded once, then read-only: every method is a pure function of its arguments."""

    task: ClassVar[str] = "recommend"
    max_batch: ClassVar[int] = MAX_BATCH

    def __init__(
        self,
        model: RecommenderModel,
        items: Sequence[dict],
        history: History | None,
        device: torch.device,
        neighbours: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self._model = model
        self._device = device
        self._items = tuple(MappingProxyType(dict(item)) for item in items)
        self._history = history
        self._arrays = ModelArrays.from_model(model)
        counts = self._arrays.counts
        self._popular_order = np.argsort(-counts, kind="stable")
        self._popular_order.setflags(write=False)
        self._eligible = counts >= MIN_RATINGS_TO_RECOMMEND
        self._eligible.setflags(write=False)
        self._average_user = self._arrays.global_mean + self._arrays.item_bias  # μ + b_i
        self._genre_masks = genre_masks(items, GENRES)
        self._index = CatalogueIndex.build([item["title"] for item in items], counts.tolist())
        years = [item["year"] for item in items if item.get("year")]
        self._scope = f"MovieLens-100K: films up to {max(years)}" if years else "MovieLens-100K"
        self._map = build_item_map(self._arrays, self._items, self._eligible)
        self._neighbours = neighbours or load_neighbours()  # "more like this" (neighbours.safetensors)
        if self._neighbours is None:
            raise FileNotFoundError(
                "models/recommend/neighbours.safetensors is missing: python -m models.recommend.neighbours"
            )

    # ---------- facts ----------
    @property
    def n_users(self) -> int:
        return self._arrays.n_users

    @property
    def n_items(self) -> int:
        return self._arrays.n_items

    @property
    def has_history(self) -> bool:
        """Whether existing users' histories (the local MovieLens files) are available."""
        return self._history is not None

    @property
    def device(self) -> str:
        return str(self._device)

    def info(self) -> dict[str, Any]:
        meta = MF_MOVIELENS_100K.metadata()
        metrics = MF_MOVIELENS_100K.metrics()
        n_parameters = sum(
            int(buffer.numel()) for name, buffer in self._model.named_buffers() if name != "item_count"
        )
        return {
            "task": self.task,
            "name": "biased matrix factorisation (MovieLens-100K)",
            "parameters": n_parameters,
            "features": {
                "n_factors": int(self._arrays.item_factors.shape[1]),
                "implicit_term": bool(self._arrays.implicit_factors.shape[1]),
                "ranking_factors": int(self._arrays.ranking_factors.shape[1]),
                "trainer": meta.get("trainer", "adam"),
            },
            "data": f"MovieLens-100K {meta.get('train_file', 'u1.base')}",
            "catalogue_scope": self._scope,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "has_history": self.has_history,
            "device": self.device,
            # every figure of the evaluation run (model, baselines, references), so pages need no file
            "metrics": {
                key: value
                for key, value in metrics.items()
                if isinstance(value, int | float | str) and not isinstance(value, bool)
            },
            "limits": {
                "max_k": MAX_K,
                "max_ratings": MAX_RATINGS,
                "max_batch": MAX_BATCH,
                "min_ratings_to_recommend": MIN_RATINGS_TO_RECOMMEND,
            },
        }

    def self_test(self) -> dict[str, Any]:
        """Recommend for the bundled sci-fi profile; the home page shows the result."""
        example = next(e for e in example_inputs() if e["name"] == "sci_fi_fan")
        started = time.perf_counter()
        result = self.predict({"ratings": example["ratings"], "k": 3})
        titles = [rec["display_title"] for rec in result["recommendations"]]  # as its page names them
        return {
            "input": f"{len(example['ratings'])} hand-made ratings (sci-fi fan)",
            "output": "top picks: " + "; ".join(titles),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    # ---------- catalogue ----------
    def catalogue(self) -> list[dict]:
        """Every film with id, title, display title, year, genres and its training rating count."""
        return [{"id": row["item_id"], **row} for row in map(self._describe, range(self.n_items))]

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> dict[str, Any]:
        """Films whose title contains what was typed ("The Godfather" finds "Godfather, The"); no fuzzy
        matches. {"query", "matches": [film...], "scope", "notes"}."""
        query = check_query(query)
        limit = check_limit(limit)
        matches = [self._describe(index) for index in self._index.search(query, limit)]
        notes = []
        if query.strip() and not matches:
            notes.append(f"no title matches '{query.strip()[:60]}' ({self._scope})")
        return {"query": query, "matches": matches, "scope": self._scope, "notes": notes}

    def _describe(self, index: int) -> dict:
        item = self._items[index]
        return {
            "item_id": int(item["id"]),
            "title": str(item["title"]),
            "display_title": display_title(str(item["title"])),
            "year": item["year"],
            "genres": list(item["genres"]),
            "n_ratings": int(self._arrays.counts[index]),
        }

    # ---------- the three stages ----------
    def preprocess(self, item: Any, *, strict_ids: bool = False) -> Request:
        """strict_ids: an unknown user is an UnknownIdError (the REST API's 404) instead of flagged
        popular picks (as Surprise answers, which suits the pages: they only offer known ids)."""
        kind, payload, k, genre = request_fields(item)
        if kind == "ratings":
            return self._ratings_request(payload, k, genre)
        if strict_ids:
            self._check_user(payload)
        return self._user_request(payload, k, genre)

    def _check_user(self, raw_user: Any) -> int:
        user_id = whole_number(raw_user, "user")
        if not 1 <= user_id <= self.n_users:
            raise UnknownIdError(
                f"there is no user {user_id}; MovieLens-100K users go from 1 to {self.n_users} "
                "(send 'ratings' instead to get picks for a new user)"
            )
        return user_id

    def _ratings_request(self, ratings: RatingsInput, k: int, genre: str | None) -> Request:
        parsed = check_ratings(ratings)
        known = {item: value for item, value in parsed.items() if 1 <= item <= self.n_items}
        unknown = sorted(item for item in parsed if item not in known)
        if known:
            return Request("fold-in", k, genre, ratings=known, unknown_items=unknown)
        reason = "no ratings of known movies were given" if unknown else "no ratings were given"
        return Request("fallback", k, genre, unknown_items=unknown, reason=reason)

    def _user_request(self, raw_user: Any, k: int, genre: str | None) -> Request:
        user_id = whole_number(raw_user, "user")
        if not 1 <= user_id <= self.n_users:
            reason = f"user {user_id} is not one of the {self.n_users} trained users"
            return Request("fallback", k, genre, user_id=user_id, reason=reason)
        index = user_id - 1
        if self._history is not None and index in self._history.items:
            known = {
                int(i) + 1: float(r)
                for i, r in zip(self._history.items[index], self._history.ratings[index], strict=True)
            }
            return Request("fold-in", k, genre, ratings=known, user_id=user_id, history="local dataset")
        return Request("trained", k, genre, user_id=user_id, history="unavailable")

    def _forward(self, prepared: Sequence[Request], **options: Any) -> list[UserScores | None]:
        """Fold-in for each new user (tiny solves), then one batched scoring pass for all of them."""
        arrays = self._arrays
        solved: list[dict[str, Any]] = []
        positions: list[int] = []
        for position, request in enumerate(prepared):
            if request.mode == "fold-in":
                started = time.perf_counter()
                items = np.fromiter(
                    (i - 1 for i in request.ratings), dtype=np.int64, count=len(request.ratings)
                )
                values = np.fromiter(request.ratings.values(), dtype=np.float64, count=len(request.ratings))
                solution = arrays.fold_in(items, values)
                solved.append(
                    {
                        "bias": float(solution.bias),
                        "vector": solution.vector,
                        "solution": solution,
                        "rated_items": items,
                        "rated_values": values,
                        "fold_in_ms": (time.perf_counter() - started) * 1000,
                    }
                )
                positions.append(position)
            elif request.mode == "trained":
                user = request.user_id - 1
                solved.append({"bias": float(arrays.user_bias[user]), "vector": arrays.user_vectors[user]})
                positions.append(position)
        outputs: list[UserScores | None] = [None] * len(prepared)
        if not solved:
            return outputs
        rated = np.zeros((len(solved), self.n_items))  # (B, n_items) 0/1 "has rated"
        for row, user in enumerate(solved):
            if "rated_items" in user:
                rated[row, user["rated_items"]] = 1.0
        biases = np.array([user["bias"] for user in solved])  # (B,)
        vectors = np.stack([user["vector"] for user in solved])  # (B, k)
        predicted, implicit = self._score(biases, vectors, rated)  # (B, n_items) each
        for row, (position, user) in enumerate(zip(positions, solved, strict=True)):
            outputs[position] = UserScores(predicted=predicted[row], implicit=implicit[row], **user)
        return outputs

    def _score(
        self, biases: np.ndarray, vectors: np.ndarray, rated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._device.type == "cpu":
            return self._arrays.scores(biases, vectors, rated)
        with inference_context(self._device):  # an accelerator: one batched pass of the torch module
            to_device = functools.partial(torch.as_tensor, dtype=torch.float32, device=self._device)
            predicted = self._model(to_device(biases), to_device(vectors)).float().cpu().numpy()
            implicit = self._model.implicit_scores(to_device(rated)).float().cpu().numpy()
        return predicted.astype(np.float64), implicit.astype(np.float64)

    def postprocess(self, prepared: Request, output: UserScores | None, **options: Any) -> dict[str, Any]:
        if output is None:
            exclude = [item - 1 for item in prepared.ratings]
            result = self._popularity(prepared.k, prepared.genre, exclude, prepared.reason or "")
        else:
            result = self._personal(prepared, output)
        if prepared.unknown_items:
            result["unknown_items"] = prepared.unknown_items
            result["notes"].append(
                "ignored unknown movie ids: " + ", ".join(map(str, prepared.unknown_items[:20]))
            )
        if prepared.user_id is not None:
            result["user_id"] = prepared.user_id
        if prepared.history is not None:
            result["history"] = prepared.history
        return result

    def _personal(self, request: Request, user: UserScores) -> dict[str, Any]:
        exclude = user.rated_items.tolist() if user.rated_items is not None else []
        allowed = allowed_mask(self._eligible, self._genre_masks, request.genre, exclude)
        top = two_stage_top(user, allowed, request.k)
        explanations: list[Explanation | None] = [None] * len(top)
        if user.solution is not None:
            titles = [item["title"] for item in self._items]
            explanations = explain(
                user.solution,
                self._arrays.item_factors[top],
                self._average_user[top],
                user.rated_items,
                user.rated_values,
                titles,
            )
        recs = []
        for index, explanation in zip(top.tolist(), explanations, strict=True):
            rec = self._describe(index)
            rec["predicted_rating"] = round(float(np.clip(user.predicted[index], RATING_MIN, RATING_MAX)), 3)
            rec["because"] = [reason.as_dict() for reason in explanation.reasons] if explanation else []
            if explanation is not None:
                rec["explanation"] = explanation.as_dict()
            recs.append(rec)
        notes = []
        if request.mode == "trained":
            notes.append(
                "rating histories are not available on this machine: the trained user vector is used, "
                "already-rated films cannot be excluded and there are no explanations"
            )
        if len(recs) < request.k:
            notes.append(f"only {len(recs)} films match the filter")
        result = self._result(recs, low_confidence=False, notes=notes)
        result.update(
            mode=request.mode,
            fallback=None,
            n_rated=len(exclude),
            genre=request.genre,
            user_bias=round(user.bias, 4),
        )
        if user.fold_in_ms is not None:
            result["fold_in_ms"] = round(user.fold_in_ms, 3)
        return result

    def _popularity(self, k: int, genre: str | None, exclude: Sequence[int], reason: str) -> dict[str, Any]:
        mask = allowed_mask(self._eligible, self._genre_masks, genre, exclude)
        recs = []
        for index in [int(i) for i in self._popular_order if mask[i]][:k]:
            rec = self._describe(index)
            rec["predicted_rating"] = round(
                float(np.clip(self._average_user[index], RATING_MIN, RATING_MAX)), 3
            )
            rec["because"] = []
            recs.append(rec)
        result = self._result(
            recs, low_confidence=True, notes=[f"popular films instead of personal picks: {reason}"]
        )
        result.update(mode="popularity", fallback="popularity", reason=reason, n_rated=0, genre=genre)
        return result

    @staticmethod
    def _result(recs: list[dict], low_confidence: bool, notes: list[str]) -> dict[str, Any]:
        """The contract's common fields: label = top pick, confidence = its predicted rating on 0..1."""
        top = recs[0] if recs else None
        return {
            "label": top["title"] if top else None,
            "confidence": _stars_to_confidence(top["predicted_rating"]) if top else 0.0,
            "top_k": [{"label": rec["title"], "score": rec["predicted_rating"]} for rec in recs],
            "low_confidence": low_confidence or top is None,
            "notes": notes,
            "recommendations": recs,
        }

    # ---------- public calls (typed signatures over Service.predict / predict_batch) ----------
    def predict(self, request: Any, *, strict_ids: bool = False) -> dict[str, Any]:
        """One request, {"ratings": {...}} or {"user": id}, with optional "k" and "genre"."""
        return super().predict(request, strict_ids=strict_ids)

    def predict_batch(self, requests: Sequence[Any], *, strict_ids: bool = False) -> list[dict[str, Any]]:
        """Many requests, one batched scoring pass; a bad request gets an error entry in its slot."""
        return super().predict_batch(requests, strict_ids=strict_ids)

    # ---------- shorthands (the CLI, the bench and older callers) ----------
    def recommend(
        self, ratings: RatingsInput, k: int = DEFAULT_K, genre: str | None = None
    ) -> dict[str, Any]:
        """Top-k for a new user from {item_id: rating}; the same as predict({"ratings": ...})."""
        return self.predict({"ratings": ratings, "k": k, "genre": genre})

    def recommend_for_user(
        self, user_id: Any, k: int = DEFAULT_K, genre: str | None = None
    ) -> dict[str, Any]:
        """Top-k for a MovieLens user id (1–943); unknown ids get the popularity fallback."""
        return self.predict({"user": user_id, "k": k, "genre": genre})

    # ---------- similar items ----------
    def similar_items(
        self, item_id: Any, k: int = DEFAULT_K, genre: str | None = None, *, strict_ids: bool = False
    ) -> dict[str, Any]:
        """Films closest to item_id by cosine of item factors shrunk by how many people rated both
        (models/recommend/neighbours.py); unknown ids → popularity fallback, or UnknownIdError with
        strict_ids. A Report (services/base.py): no stage times."""
        started = time.perf_counter()
        k, genre = check_k(k), check_genre(genre)
        item_id = whole_number(item_id, "movie")
        if strict_ids and not 1 <= item_id <= self.n_items:
            raise UnknownIdError(f"there is no movie with id {item_id} (ids go from 1 to {self.n_items})")
        if not 1 <= item_id <= self.n_items:
            result = self._popularity(k, genre, [], reason=f"there is no movie with id {item_id}")
            result["item_id"] = item_id
            result["similar"] = result["recommendations"]
        else:
            index = item_id - 1
            unit = self._arrays.unit_factors
            neighbours, support = self._neighbours[0][index], self._neighbours[1][index]  # (TOP,) each
            allowed = allowed_mask(self._eligible, self._genre_masks, genre, [index])
            keep = allowed[neighbours] & (support > 0)
            neighbours, support = neighbours[keep][:k], support[keep][:k]
            cosine = unit[neighbours] @ unit[index]  # (k,)
            recs = [
                self._describe(int(j))
                | {
                    "similarity": round(float(c), 4),
                    "support": int(n),
                    "score": round(float(c * n / (n + NEIGHBOUR_SHRINK)), 4),
                }
                for j, c, n in zip(neighbours.tolist(), cosine.tolist(), support.tolist(), strict=True)
            ]
            notes = []
            if self._arrays.counts[index] < MIN_RATINGS_TO_RECOMMEND:
                notes.append(
                    f"this film has only {int(self._arrays.counts[index])} training ratings, "
                    "so its neighbours are unreliable"
                )
            if len(recs) < k:
                notes.append(f"only {len(recs)} close films match the filter")
            result = {
                "label": recs[0]["title"] if recs else None,
                "confidence": round(max(0.0, recs[0]["score"]), 4) if recs else 0.0,
                "top_k": [{"label": rec["title"], "score": rec["score"]} for rec in recs],
                "low_confidence": bool(notes) or not recs,
                "notes": notes,
                "mode": "similar",
                "fallback": None,
                "item": self._describe(index),
                "genre": genre,
                "similar": recs,
            }
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return result

    # ---------- existing users ----------
    def user_profile(self, user_id: Any, top: int = 10) -> dict[str, Any]:
        """Top-rated films and genre taste of a MovieLens user (needs the local dataset)."""
        user_id = whole_number(user_id, "user")
        if not 1 <= user_id <= self.n_users:
            raise UnknownIdError(
                f"there is no user {user_id}; MovieLens-100K users go from 1 to {self.n_users}"
            )
        if self._history is None:
            raise NotOnThisMachineError(
                "existing-user profiles need the MovieLens-100K files, which may not be redistributed and are not "
                "on this machine (set DEMO_DATA_DIR); start fresh by rating a few movies instead"
            )
        index = user_id - 1
        items, ratings = self._history.items[index], self._history.ratings[index]
        order = np.lexsort((-self._arrays.counts[items], -ratings))  # best rated first, then better known
        top_rated = [{**self._describe(int(items[j])), "rating": float(ratings[j])} for j in order[:top]]
        taste = []
        for genre in GENRES[1:]:
            flags = np.array([genre in self._items[int(i)]["genres"] for i in items])
            if flags.any():
                taste.append(
                    {
                        "genre": genre,
                        "n_rated": int(flags.sum()),
                        "mean_rating": round(float(ratings[flags].mean()), 3),
                    }
                )
        return {
            "user_id": user_id,
            "n_ratings": len(items),
            "mean_rating": round(float(ratings.mean()), 3),
            "top_rated": top_rated,
            "genre_taste": taste,
        }

    # ---------- item map ----------
    def item_map(self, min_ratings: int = MIN_RATINGS_TO_RECOMMEND) -> list[dict]:
        """2-D PCA of the item factors (fitted on films with ≥ 20 ratings); genre = first listed genre."""
        return [dict(row) for row in self._map if row["n_ratings"] >= min_ratings]


def _build() -> RecommendService:
    """Load the weights, item metadata and (when present) the local rating histories."""
    started = time.perf_counter()
    device = select_device()
    model = MF_MOVIELENS_100K.get_model(device)
    service = RecommendService(model, MF_MOVIELENS_100K.get_items(), load_history(default_data_dir()), device)
    # This service's arithmetic is tiny (a 101×101 solve, products with 1,682 × k matrices): one BLAS
    # thread answers in ~0.5 ms, while a two-thread OpenBLAS call on a busy 2-core machine waits for a
    # scheduler slice (p50 ~200 ms measured). Set once for the process, never toggled per call
    # (toggling races with other threads), after the PCA so scipy's BLAS is covered too.
    threadpool_limits(limits=1, user_api="blas")
    logger.info("recommend service ready on %s in %.0f ms", device, (time.perf_counter() - started) * 1000)
    return service


load_service = cached_loader(_build)
