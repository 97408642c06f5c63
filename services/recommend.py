"""Movie recommendations: top-N for a known user or for a new user from a few ratings (fold-in),
explanations, similar movies, a 2-D map of the item space, and a popularity fallback.

    python -m services.recommend --user 1 --k 10
    python -m services.recommend --rate "50:5,172:5,288:1" --k 10 [--genre Sci-Fi]
    python -m services.recommend --similar 50 --k 10

Fold-in: a new user's bias and vector are the regularised least-squares solution with every item
parameter fixed (the same penalty as in training), so there is no retraining; the predicted rating
of a candidate film is then an exact sum of one term per rated film, which is the explanation
("because you rated X 5★": the rated films that add most to that prediction).

Top-N in two stages: an implicit-feedback ranker (PureSVD of "who rated what") proposes the
max(20, 2·k) films, among those with at least MIN_RATINGS_TO_RECOMMEND training ratings, that people
with the same viewing history watch (so for k ≤ 10 a shorter list is a prefix of a longer one); the rating model orders them by predicted rating. On the 5-fold protocol this
gives NDCG@10 0.36 against 0.07 for ordering every film by predicted rating (MODEL_CARD.md).

Popularity fallback (Surprise's `was_impossible`, made useful): when there is nothing personal to
go on — an unknown user id, no usable ratings, an unknown item for "more like this" — the result
lists the most-rated films (rating counts of the training file, shipped with the weights), with
`"fallback": "popularity"` and a `"reason"`. Ids must be whole numbers: anything else raises
`UnknownIdError`; ratings outside 1–5 raise `InputError`.

Existing users' rating histories are MovieLens data and do not ship. When the dataset is on the
machine ($DEMO_DATA_DIR, or ../shared/data/movielens-100k) a known user is folded in from their
full history (profile, explanations, already-rated films excluded); without it the trained user
vector is used and the result says that rated films could not be excluded.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from models.recommend import GENRES, MF_MOVIELENS_100K, RecommenderModel, fold_in, n_candidates
from models.recommend.data import default_data_dir, read_ratings
from models.runtime import inference_context, select_device
from services.errors import EmptyInputError, InputError, InputTooLargeError, UnknownIdError

logger = logging.getLogger(__name__)

RATING_MIN, RATING_MAX = 1.0, 5.0
MAX_RATINGS = 1000  # ratings per request (a MovieLens user has at most 737)
MAX_K = 50  # recommendations per request
MAX_BATCH = 256  # requests per predict_batch call
MAX_ID_CHARS = 12  # an id given as text longer than this is refused before parsing
MAX_RATE_CHARS = 20_000  # length of a "ITEM:RATING,..." string
MIN_RATINGS_TO_RECOMMEND = 20  # films rated fewer times in training are not recommended (see MODEL_CARD)
EXPLAIN_TOP = 3  # rated films listed per explanation
EXAMPLES_DIR = Path(MF_MOVIELENS_100K.weights_path).parent / "examples"


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _whole_number(value: Any, kind: str) -> int:
    """An id as int; bools, fractions, text that is not a whole number → UnknownIdError."""
    if isinstance(value, bool) or value is None:
        raise UnknownIdError(f"{kind} id must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise UnknownIdError(f"{kind} id must be a whole number, got {value!r}")
    text = str(value).strip()
    # ASCII digits only: str.isdigit() also accepts '¹' or '٣', which int() then refuses.
    if len(text) > MAX_ID_CHARS or not _WHOLE_NUMBER.fullmatch(text):
        shown = text if len(text) <= MAX_ID_CHARS else text[:MAX_ID_CHARS] + "…"
        raise UnknownIdError(f"{kind} id must be a whole number, got '{shown}'")
    return int(text)


def _rating(value: Any, item_id: int) -> float:
    try:
        rating = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"the rating for movie {item_id} must be a number from 1 to 5, got {value!r}"
        ) from None
    if not math.isfinite(rating) or not RATING_MIN <= rating <= RATING_MAX:
        raise InputError(f"ratings go from 1 to 5 stars; movie {item_id} was given {value!r}")
    return rating


def parse_ratings(text: str) -> dict[int, float]:
    """'50:5,172:4.5' → {50: 5.0, 172: 4.5}; malformed pairs raise InputError."""
    if len(text) > MAX_RATE_CHARS:
        raise InputTooLargeError(f"the ratings text is {len(text)} characters; the limit is {MAX_RATE_CHARS}")
    ratings: dict[int, float] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        item, sep, value = pair.partition(":")
        if not sep:
            raise InputError(f"'{pair[:40]}' is not ITEM_ID:RATING (e.g. 50:5)")
        item_id = _whole_number(item, "movie")
        if item_id in ratings:
            raise InputError(f"movie {item_id} is rated twice")
        ratings[item_id] = _rating(value, item_id)
    return ratings


@dataclass(frozen=True)
class _History:
    """Existing users' ratings, read from the local dataset (never shipped); arrays are read-only."""

    items: Mapping[int, np.ndarray]  # user index → item indices
    ratings: Mapping[int, np.ndarray]  # user index → ratings


def _load_history(data_dir: Path | None) -> _History | None:
    if data_dir is None:
        return None
    try:
        table = read_ratings(data_dir / "u.data")
    except (OSError, ValueError):
        logger.warning("could not read %s; existing-user histories unavailable", data_dir / "u.data")
        return None
    order = np.lexsort((table.items, table.users))
    users, items, ratings = table.users[order], table.items[order], table.ratings[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    item_map, rating_map = {}, {}
    for chunk_users, chunk_items, chunk_ratings in zip(
        np.split(users, bounds), np.split(items, bounds), np.split(ratings, bounds), strict=True
    ):
        chunk_items.setflags(write=False)
        chunk_ratings.setflags(write=False)
        item_map[int(chunk_users[0])] = chunk_items
        rating_map[int(chunk_users[0])] = chunk_ratings
    logger.info("existing-user histories from %s (%d users)", data_dir, len(item_map))
    return _History(MappingProxyType(item_map), MappingProxyType(rating_map))


class RecommendService:
    """Loaded once, then read-only: every method is a pure function of its arguments."""

    def __init__(
        self, model: RecommenderModel, items: Sequence[dict], history: _History | None, device: torch.device
    ):
        self._model = model
        self._device = device
        self._items = tuple(MappingProxyType(dict(item)) for item in items)
        self._history = history
        counts = model.item_count.detach().cpu()
        self._counts = counts.numpy().astype(np.int64)
        self._counts.setflags(write=False)
        self._popular_order = np.argsort(-self._counts, kind="stable")
        self._popular_order.setflags(write=False)
        self._eligible = self._counts >= MIN_RATINGS_TO_RECOMMEND  # numpy: post-processing stays on the CPU
        self._eligible.setflags(write=False)
        self._average_user = (model.global_mean + model.item_bias).detach().cpu().numpy()  # μ + b_i
        self._average_user.setflags(write=False)
        params = {
            name: tensor.detach().to("cpu", torch.float64).numpy() for name, tensor in model.named_buffers()
        }
        params["global_mean"] = float(params["global_mean"][0])
        for value in params.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        self._params = MappingProxyType(params)  # float64 copies for fold-in, explanations and CPU scoring
        factors = params["item_factors"]
        unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-8)  # (n_items, k)
        unit.setflags(write=False)
        self._unit_factors = unit
        masks = {genre: np.array([genre in item["genres"] for item in items]) for genre in GENRES}
        for mask in masks.values():
            mask.setflags(write=False)
        self._genre_masks = MappingProxyType(masks)
        self._map = self._item_map(factors)

    # ---------- metadata ----------
    @property
    def n_users(self) -> int:
        return self._model.n_users

    @property
    def n_items(self) -> int:
        return self._model.n_items

    @property
    def has_history(self) -> bool:
        """Whether existing users' histories (the local MovieLens files) are available."""
        return self._history is not None

    @property
    def device(self) -> str:
        return str(self._device)

    def catalogue(self) -> list[dict]:
        """Every film with id, title, year, genres and its training rating count (for search boxes)."""
        return [
            {**item, "n_ratings": int(count)} for item, count in zip(self._items, self._counts, strict=True)
        ]

    def item(self, item_id: Any) -> dict:
        item_id = _whole_number(item_id, "movie")
        if not 1 <= item_id <= self.n_items:
            raise UnknownIdError(f"there is no movie with id {item_id} (ids go from 1 to {self.n_items})")
        return self._describe(item_id - 1)

    def _describe(self, index: int) -> dict:
        item = self._items[index]
        return {
            "item_id": int(item["id"]),
            "title": str(item["title"]),
            "year": item["year"],
            "genres": list(item["genres"]),
            "n_ratings": int(self._counts[index]),
        }

    # ---------- validation ----------
    def _check_k(self, k: Any) -> int:
        try:
            k = _whole_number(k, "k")
        except UnknownIdError:
            raise InputError(f"k must be a whole number from 1 to {MAX_K}") from None
        if not 1 <= k <= MAX_K:
            raise InputError(f"k must be from 1 to {MAX_K}, got {k}")
        return k

    def _check_genre(self, genre: str | None) -> str | None:
        if genre is None or str(genre).strip() == "":
            return None
        lookup = {name.lower(): name for name in GENRES}
        name = lookup.get(str(genre).strip().lower())
        if name is None:
            raise InputError(f"unknown genre '{str(genre)[:40]}'; choose one of: {', '.join(GENRES[1:])}")
        return name

    def _check_ratings(
        self, ratings: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | str
    ) -> tuple[dict[int, float], list[int]]:
        if isinstance(ratings, str):
            parsed = parse_ratings(ratings)
        else:
            pairs = list(ratings.items()) if isinstance(ratings, Mapping) else list(ratings)
            if len(pairs) > MAX_RATINGS:
                raise InputTooLargeError(f"{len(pairs)} ratings were given; the limit is {MAX_RATINGS}")
            parsed = {}
            for item, value in pairs:
                item_id = _whole_number(item, "movie")
                if item_id in parsed:
                    raise InputError(f"movie {item_id} is rated twice")
                parsed[item_id] = _rating(value, item_id)
        if len(parsed) > MAX_RATINGS:
            raise InputTooLargeError(f"{len(parsed)} ratings were given; the limit is {MAX_RATINGS}")
        known = {item: value for item, value in parsed.items() if 1 <= item <= self.n_items}
        unknown = sorted(item for item in parsed if item not in known)
        return known, unknown

    # ---------- recommendations ----------
    def recommend(
        self,
        ratings: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | str,
        k: int = 10,
        genre: str | None = None,
    ) -> dict:
        """Top-k for a new user from {item_id: rating}: fold-in, scores, explanations."""
        return self.recommend_batch([ratings], k=k, genre=genre)[0]

    def recommend_batch(self, ratings_list: Sequence, k: int = 10, genre: str | None = None) -> list[dict]:
        """Many new users at once: one fold-in each (tiny solves), one batched scoring forward."""
        if len(ratings_list) > MAX_BATCH:
            raise InputTooLargeError(f"{len(ratings_list)} requests; the limit is {MAX_BATCH} per batch")
        k, genre = self._check_k(k), self._check_genre(genre)
        checked = [self._check_ratings(ratings) for ratings in ratings_list]
        requests = []
        for known, unknown in checked:
            note = {"unknown_items": unknown} if unknown else {}
            if not known:
                reason = "no ratings of known movies were given" if unknown else "no ratings were given"
                requests.append(("fallback", reason, known, note))
            else:
                requests.append(("fold-in", None, known, note))
        return self._run(requests, k, genre)

    def recommend_for_user(self, user_id: Any, k: int = 10, genre: str | None = None) -> dict:
        """Top-k for a MovieLens user id (1–943); unknown ids get the popularity fallback."""
        return self.recommend_for_users([user_id], k=k, genre=genre)[0]

    def recommend_for_users(
        self, user_ids: Sequence[Any], k: int = 10, genre: str | None = None
    ) -> list[dict]:
        if len(user_ids) > MAX_BATCH:
            raise InputTooLargeError(f"{len(user_ids)} requests; the limit is {MAX_BATCH} per batch")
        k, genre = self._check_k(k), self._check_genre(genre)
        requests = []
        for raw in user_ids:
            user_id = _whole_number(raw, "user")
            note = {"user_id": user_id}
            if not 1 <= user_id <= self.n_users:
                requests.append(
                    ("fallback", f"user {user_id} is not one of the {self.n_users} trained users", {}, note)
                )
            elif self._history is not None and (user_id - 1) in self._history.items:
                index = user_id - 1
                known = {
                    int(i) + 1: float(r)
                    for i, r in zip(self._history.items[index], self._history.ratings[index], strict=True)
                }
                requests.append(("fold-in", None, known, {**note, "history": "local dataset"}))
            else:
                requests.append(("trained", None, {}, {**note, "history": "unavailable"}))
        return self._run(requests, k, genre)

    def _run(self, requests: list[tuple], k: int, genre: str | None) -> list[dict]:
        """requests: (mode, reason, {item_id: rating}, extra fields) → one result dict each."""
        started = time.perf_counter()
        params = self._params
        # (request index, FoldIn | None, bias, vector (k,), rated item indices | None, ratings | None)
        solved: list[tuple[int, Any, float, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        fold_in_ms: dict[int, float] = {}
        for index, (mode, _reason, known, extra) in enumerate(requests):
            if mode == "fold-in":
                t0 = time.perf_counter()
                items = np.fromiter((i - 1 for i in known), dtype=np.int64, count=len(known))
                values = np.fromiter(known.values(), dtype=np.float64, count=len(known))
                solution = fold_in(
                    items,
                    values,
                    global_mean=params["global_mean"],
                    item_bias=params["item_bias"],
                    item_factors=params["item_factors"],
                    implicit_factors=params["implicit_factors"],
                    reg_factors=self._model.reg_factors,
                    reg_bias=self._model.reg_bias,
                    reg_exponent=self._model.reg_exponent,
                )
                fold_in_ms[index] = (time.perf_counter() - t0) * 1000
                solved.append((index, solution, float(solution.bias), solution.vector, items, values))
            elif mode == "trained":
                user = extra["user_id"] - 1
                solved.append(
                    (index, None, float(params["user_bias"][user]), params["user_vectors"][user], None, None)
                )
        scores = implicit = None
        if solved:
            rated = np.zeros((len(solved), self.n_items))  # (B, n_items) 0/1 "has rated"
            for position, row in enumerate(solved):
                if row[4] is not None:
                    rated[position, row[4]] = 1.0
            biases = np.array([row[2] for row in solved])  # (B,)
            vectors = np.stack([row[3] for row in solved])  # (B, k)
            scores, implicit = self._forward(biases, vectors, rated)  # (B, n_items) each
        row_of = {row[0]: position for position, row in enumerate(solved)}
        results = []
        for index, (mode, reason, known, extra) in enumerate(requests):
            if mode == "fallback":
                result = self._popularity(k, genre, exclude=[i - 1 for i in known], reason=reason)
            else:
                _, solution, bias, _vector, items, values = solved[row_of[index]]
                position = row_of[index]
                result = self._personal(
                    scores[position], implicit[position], solution, items, values, k, genre, mode
                )
                result["user_bias"] = round(float(bias), 4)
                if index in fold_in_ms:
                    result["fold_in_ms"] = round(fold_in_ms[index], 3)
            result.update(extra)
            results.append(result)
        elapsed = (time.perf_counter() - started) * 1000
        for result in results:
            result["latency_ms"] = round(elapsed / len(results), 3)
        return results

    def _forward(
        self, biases: np.ndarray, vectors: np.ndarray, rated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ratings and implicit candidate scores for B users, both (B, n_items).

        On an accelerator: one batched pass of the torch module under inference_context. On the CPU
        the same arithmetic runs in numpy: for matrices this small torch's intra-op thread pool costs
        15-40 ms per call on a busy 2-core machine against ~0.03 ms for numpy in the calling thread.
        """
        if self._device.type == "cpu":
            params = self._params
            personal = vectors @ params["item_factors"].T  # (B, n_items)
            scores = params["global_mean"] + biases[:, None] + params["item_bias"][None, :] + personal
            implicit = (rated @ params["ranking_factors"]) @ params["ranking_factors"].T
            return scores, implicit
        with inference_context(self._device):
            to_device = functools.partial(torch.as_tensor, dtype=torch.float32, device=self._device)
            scores = self._model(to_device(biases), to_device(vectors)).float().cpu().numpy()
            implicit = self._model.implicit_scores(to_device(rated)).float().cpu().numpy()
        return scores, implicit

    def _candidates(self, genre: str | None, exclude: Iterable[int]) -> np.ndarray:
        mask = self._eligible.copy()
        if genre is not None:
            mask &= self._genre_masks[genre]
        excluded = list(exclude)
        if excluded:
            mask[np.asarray(excluded, dtype=np.int64)] = False
        return mask

    @staticmethod
    def _top(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
        """Indices of the k largest values where mask is set, best first."""
        candidates = np.flatnonzero(mask)
        order = np.argsort(-values[candidates], kind="stable")[:k]
        return candidates[order]

    def _personal(self, scores, implicit, solution, items, values, k, genre, mode) -> dict:
        """Two-stage top-N: the max(20, 2·k) allowed films with the highest implicit (PureSVD) score are the
        candidates — what people with this viewing history watch — ordered by predicted rating."""
        exclude = items.tolist() if items is not None else []
        allowed = self._candidates(genre, exclude)
        if exclude:
            candidates = self._top(implicit, allowed, n_candidates(k))
            allowed = np.zeros_like(allowed)
            allowed[candidates] = True
        top = self._top(scores, allowed, k)
        recs = []
        contributions = None
        if solution is not None and len(top):
            contributions = solution.contributions(self._params["item_factors"][top])  # (k, n)
        rated_ids = [int(i) for i in exclude]
        rated_values = values.tolist() if values is not None else []
        for position, index in enumerate(top.tolist()):
            rec = self._describe(index)
            rec["predicted_rating"] = round(float(np.clip(scores[index], RATING_MIN, RATING_MAX)), 3)
            rec["because"] = []
            if contributions is not None:
                row = contributions[position]
                for j in np.argsort(-row, kind="stable")[:EXPLAIN_TOP].tolist():
                    if float(row[j]) <= 0:
                        break
                    rec["because"].append(
                        {
                            "item_id": rated_ids[j] + 1,
                            "title": self._items[rated_ids[j]]["title"],
                            "rating": rated_values[j],
                            "contribution": round(float(row[j]), 3),
                        }
                    )
            recs.append(rec)
        result = {
            "mode": mode,
            "fallback": None,
            "n_rated": len(rated_ids),
            "genre": genre,
            "recommendations": recs,
        }
        if mode == "trained":
            result["note"] = (
                "rating histories are not available on this machine: the trained user vector is used, "
                "already-rated films cannot be excluded and there are no explanations"
            )
        if len(recs) < k:
            result["note"] = f"only {len(recs)} films match the filter"
        return result

    def _popularity(self, k: int, genre: str | None, exclude: Iterable[int], reason: str) -> dict:
        mask = self._candidates(genre, exclude)
        order = [int(i) for i in self._popular_order if mask[i]][:k]
        recs = []
        for index in order:
            rec = self._describe(index)
            rec["predicted_rating"] = round(
                float(np.clip(self._average_user[index], RATING_MIN, RATING_MAX)), 3
            )
            rec["because"] = []
            recs.append(rec)
        return {
            "mode": "popularity",
            "fallback": "popularity",
            "reason": reason,
            "n_rated": 0,
            "genre": genre,
            "recommendations": recs,
        }

    # ---------- similar items ----------
    def similar_items(self, item_id: Any, k: int = 10, genre: str | None = None) -> dict:
        """Films closest to item_id by cosine of item factors; unknown ids → popularity fallback."""
        k, genre = self._check_k(k), self._check_genre(genre)
        started = time.perf_counter()
        item_id = _whole_number(item_id, "movie")
        if not 1 <= item_id <= self.n_items:
            result = self._popularity(k, genre, [], reason=f"there is no movie with id {item_id}")
            result["item_id"] = item_id
        else:
            index = item_id - 1
            cosine = self._unit_factors @ self._unit_factors[index]  # (n_items,)
            top = self._top(cosine, self._candidates(genre, [index]), k).tolist()
            recs = []
            for j in top:
                rec = self._describe(j)
                rec["similarity"] = round(float(cosine[j]), 4)
                recs.append(rec)
            result = {
                "mode": "similar",
                "fallback": None,
                "item": self._describe(index),
                "genre": genre,
                "similar": recs,
            }
            if self._counts[index] < MIN_RATINGS_TO_RECOMMEND:
                result["note"] = (
                    f"this film has only {int(self._counts[index])} training ratings, so its neighbours are unreliable"
                )
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return result

    # ---------- existing users ----------
    def user_profile(self, user_id: Any, top: int = 10) -> dict:
        """Top-rated films and genre taste of a MovieLens user (needs the local dataset)."""
        user_id = _whole_number(user_id, "user")
        if not 1 <= user_id <= self.n_users:
            raise UnknownIdError(
                f"there is no user {user_id}; MovieLens-100K users go from 1 to {self.n_users}"
            )
        if self._history is None:
            raise InputError(
                "existing-user profiles need the MovieLens-100K files, which may not be redistributed and are not "
                "on this machine (set DEMO_DATA_DIR); start fresh by rating a few movies instead"
            )
        index = user_id - 1
        items, ratings = self._history.items[index], self._history.ratings[index]
        order = np.lexsort((-self._counts[items], -ratings))  # best rated first, then better known
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
    def _item_map(self, factors: np.ndarray) -> tuple:
        from sklearn.decomposition import PCA

        eligible = self._counts >= MIN_RATINGS_TO_RECOMMEND
        pca = PCA(n_components=2, random_state=0).fit(factors[eligible])
        coords = pca.transform(factors)
        rows = []
        for index, item in enumerate(self._items):
            genres = [g for g in item["genres"] if g != "unknown"]
            rows.append(
                MappingProxyType(
                    {
                        "item_id": int(item["id"]),
                        "title": str(item["title"]),
                        "x": round(float(coords[index, 0]), 4),
                        "y": round(float(coords[index, 1]), 4),
                        "genre": genres[0] if genres else "unknown",
                        "n_ratings": int(self._counts[index]),
                    }
                )
            )
        return tuple(rows)

    def item_map(self, min_ratings: int = MIN_RATINGS_TO_RECOMMEND) -> list[dict]:
        """2-D PCA of the item factors (fitted on films with ≥ 20 ratings); genre = first listed genre."""
        return [dict(row) for row in self._map if row["n_ratings"] >= min_ratings]

    # ---------- the common service interface ----------
    def predict(self, request: Mapping[str, Any]) -> dict:
        """One request: {"user": id} or {"ratings": {...}} or {"similar": id}, plus optional k and genre."""
        return self.predict_batch([request])[0]

    def predict_batch(self, requests: Sequence[Mapping[str, Any]]) -> list[dict]:
        if len(requests) > MAX_BATCH:
            raise InputTooLargeError(f"{len(requests)} requests; the limit is {MAX_BATCH} per batch")
        out: list[dict | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for position, request in enumerate(requests):
            if (
                not isinstance(request, Mapping)
                or sum(key in request for key in ("user", "ratings", "similar")) != 1
            ):
                raise InputError("each request needs exactly one of 'user', 'ratings' or 'similar'")
            if "similar" in request:
                out[position] = self.similar_items(
                    request["similar"], request.get("k", 10), request.get("genre")
                )
                continue
            kind = "user" if "user" in request else "ratings"
            groups.setdefault((kind, request.get("k", 10), request.get("genre")), []).append(position)
        for (kind, k, genre), positions in groups.items():
            payload = [requests[p][kind] for p in positions]
            if kind == "user":
                results = self.recommend_for_users(payload, k=k, genre=genre)
            else:
                results = self.recommend_batch(payload, k=k, genre=genre)
            for position, result in zip(positions, results, strict=True):
                out[position] = result
        return out  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def load_service() -> RecommendService:
    """Load the weights, item metadata and (when present) the local rating histories, once."""
    started = time.perf_counter()
    # This service's arithmetic is tiny (a 101×101 solve, products with 1,682 × 100 matrices): one
    # BLAS thread answers in ~0.5 ms, while a two-thread OpenBLAS call on a busy 2-core machine waits
    # for a scheduler slice (p50 ~200 ms measured). Set once for the process, never toggled per call
    # (toggling races with other threads); torch's own thread pool is not affected.
    device = select_device()
    model = MF_MOVIELENS_100K.get_model(device)
    service = RecommendService(
        model, MF_MOVIELENS_100K.get_items(), _load_history(default_data_dir()), device
    )
    threadpool_limits(limits=1, user_api="blas")  # after the PCA, so scipy's BLAS is covered too
    logger.info("recommend service ready on %s in %.0f ms", device, (time.perf_counter() - started) * 1000)
    return service


def example_inputs() -> list[dict]:
    """The bundled hand-made rating profiles: {"name", "description", "ratings": {item_id: rating}}."""
    examples = []
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        ratings = {int(item): float(value) for item, value in data["ratings"].items()}
        examples.append({"name": path.stem, "description": data["description"], "ratings": ratings})
    return examples


def self_test() -> dict:
    """Recommend for the bundled sci-fi profile; the home page shows the result."""
    example = next(e for e in example_inputs() if e["name"] == "sci_fi_fan")
    service = load_service()
    started = time.perf_counter()
    result = service.recommend(example["ratings"], k=3)
    latency = (time.perf_counter() - started) * 1000
    titles = [rec["title"] for rec in result["recommendations"]]
    return {
        "input": f"{len(example['ratings'])} hand-made ratings (sci-fi fan)",
        "output": "top picks: " + "; ".join(titles),
        "latency_ms": round(latency, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from services.cli import run_per_input

    parser = argparse.ArgumentParser(
        prog="python -m services.recommend", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--user", action="append", default=[], help="MovieLens user id (repeatable)")
    parser.add_argument(
        "--rate", action="append", default=[], help='"ITEM_ID:RATING,..." for a new user (repeatable)'
    )
    parser.add_argument(
        "--similar", action="append", default=[], help="movie id for 'more like this' (repeatable)"
    )
    parser.add_argument("--k", default="10")
    parser.add_argument("--genre", default=None, help=f"one of {', '.join(GENRES[1:])}")
    args = parser.parse_args(argv)
    if not (args.user or args.rate or args.similar):
        parser.error("give at least one --user, --rate or --similar")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    service = load_service()
    inputs = (
        [f"user={v}" for v in args.user]
        + [f"rate={v}" for v in args.rate]
        + [f"similar={v}" for v in args.similar]
    )

    def handle(text: str) -> dict:
        kind, _, value = text.partition("=")
        if kind == "user":
            return service.recommend_for_user(value, k=args.k, genre=args.genre)
        if kind == "rate":
            if not value.strip():
                raise EmptyInputError(
                    'no ratings were given; use --rate "ITEM_ID:RATING,..." e.g. "50:5,172:4"'
                )
            return service.recommend(value, k=args.k, genre=args.genre)
        return service.similar_items(value, k=args.k, genre=args.genre)

    return run_per_input(inputs, handle, key="input")


if __name__ == "__main__":
    sys.exit(main())
