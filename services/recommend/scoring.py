"""The model side of the service: float64 copies of the weights, fold-in, scores and top-N.

Fold-in: a new user's bias and vector are the regularised least-squares solution with every item
parameter fixed (the same penalty as in training), so there is no retraining.

Top-N in two stages: an implicit-feedback ranker (PureSVD of "who rated what") proposes the
max(20, 2·k) films, among those with at least MIN_RATINGS_TO_RECOMMEND training ratings, that people
with the same viewing history watch (so for k ≤ 10 a shorter list is a prefix of a longer one); the
rating model orders them by predicted rating. On the 5-fold protocol this lifts NDCG@10 several-fold
over ordering every film by predicted rating (MODEL_CARD.md, metrics.json).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch

from models.recommend import FoldIn, RecommenderModel, fold_in, n_candidates

MIN_RATINGS_TO_RECOMMEND = 20  # films rated fewer times in training are not recommended (see MODEL_CARD)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class ModelArrays:
    """Read-only float64 numpy copies of the weights: fold-in, explanations and CPU scoring use these.

    On a busy 2-core machine numpy in the calling thread answers these tiny products in ~0.03 ms,
    while torch's intra-op pool costs 15-40 ms per call; an accelerator still uses the torch module.
    """

    global_mean: float
    user_bias: np.ndarray  # (n_users,)
    user_vectors: np.ndarray  # (n_users, k) z_u of the trained users
    item_bias: np.ndarray  # (n_items,)
    item_factors: np.ndarray  # (n_items, k)
    implicit_factors: np.ndarray  # (n_items, k) or (n_items, 0) without the SVD++ term
    ranking_factors: np.ndarray  # (n_items, f) PureSVD candidate stage
    counts: np.ndarray  # (n_items,) int64 training ratings per film
    unit_factors: np.ndarray  # (n_items, k) item factors scaled to unit length (cosine "more like this")
    reg_factors: float
    reg_bias: float
    reg_exponent: float

    @classmethod
    def from_model(cls, model: RecommenderModel) -> ModelArrays:
        arrays = {
            name: _frozen(tensor.detach().to("cpu", torch.float64).numpy().copy())
            for name, tensor in model.named_buffers()
        }
        factors = arrays["item_factors"]
        unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-8)
        return cls(
            global_mean=float(arrays["global_mean"].reshape(-1)[0]),
            user_bias=arrays["user_bias"],
            user_vectors=arrays["user_vectors"],
            item_bias=arrays["item_bias"],
            item_factors=factors,
            implicit_factors=arrays["implicit_factors"],
            ranking_factors=arrays["ranking_factors"],
            counts=_frozen(arrays["item_count"].astype(np.int64)),
            unit_factors=_frozen(unit),
            reg_factors=model.reg_factors,
            reg_bias=model.reg_bias,
            reg_exponent=model.reg_exponent,
        )

    @property
    def n_users(self) -> int:
        return len(self.user_bias)

    @property
    def n_items(self) -> int:
        return len(self.item_bias)

    def fold_in(self, items: np.ndarray, values: np.ndarray) -> FoldIn:
        """Solve a user from 0-based item indices and their ratings, items fixed."""
        return fold_in(
            items,
            values,
            global_mean=self.global_mean,
            item_bias=self.item_bias,
            item_factors=self.item_factors,
            implicit_factors=self.implicit_factors,
            reg_factors=self.reg_factors,
            reg_bias=self.reg_bias,
            reg_exponent=self.reg_exponent,
        )

    def scores(
        self, biases: np.ndarray, vectors: np.ndarray, rated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ratings and implicit candidate scores for B users, both (B, n_items)."""
        personal = vectors @ self.item_factors.T  # (B, n_items)
        predicted = self.global_mean + biases[:, None] + self.item_bias[None, :] + personal
        implicit = (rated @ self.ranking_factors) @ self.ranking_factors.T
        return predicted, implicit


@dataclass(frozen=True)
class UserScores:
    """The forward pass for one personal request: the solved user and their score rows."""

    bias: float
    vector: np.ndarray  # (k,)
    predicted: np.ndarray  # (n_items,) unclipped predicted ratings
    implicit: np.ndarray  # (n_items,) PureSVD candidate scores
    solution: FoldIn | None = None  # None for a trained user without local history
    rated_items: np.ndarray | None = None  # (n,) 0-based, in the order solved
    rated_values: np.ndarray | None = None  # (n,)
    fold_in_ms: float | None = None


def top_indices(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values where mask is set, best first (stable on ties)."""
    candidates = np.flatnonzero(mask)
    order = np.argsort(-values[candidates], kind="stable")[:k]
    return candidates[order]


def allowed_mask(
    eligible: np.ndarray, genre_masks: Mapping[str, np.ndarray], genre: str | None, exclude: Iterable[int]
) -> np.ndarray:
    mask = eligible.copy()
    if genre is not None:
        mask &= genre_masks[genre]
    excluded = list(exclude)
    if excluded:
        mask[np.asarray(excluded, dtype=np.int64)] = False
    return mask


def two_stage_top(user: UserScores, allowed: np.ndarray, k: int) -> np.ndarray:
    """The evaluated top-N: implicit candidates (when the user has rated films), by predicted rating."""
    if user.rated_items is not None and len(user.rated_items):
        candidates = top_indices(user.implicit, allowed, n_candidates(k))
        allowed = np.zeros_like(allowed)
        allowed[candidates] = True
    return top_indices(user.predicted, allowed, k)


def genre_masks(items, genres) -> Mapping[str, np.ndarray]:
    return MappingProxyType(
        {genre: _frozen(np.array([genre in item["genres"] for item in items])) for genre in genres}
    )
