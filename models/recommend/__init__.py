"""Movie recommender: biased matrix factorisation trained by ALS on MovieLens-100K.

The shipped checkpoint (`mf.safetensors`) holds model parameters only: global mean, item biases,
item factors, implicit item factors (width 0 for the ALS model), the PureSVD ranking factors (candidate stage of the top-N),
each item's rating count (for the popularity fallback and the minimum-ratings filter), and the
trained users' biases and vectors. No rating is stored. `items.json` holds the item metadata
(id, title, year, genres). See MODEL_CARD.md.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open
from torch import nn

from models.recommend.data import GENRES
from models.recommend.mf import (
    CANDIDATES_PER_PICK,
    RATING_MAX,
    RATING_MIN,
    BiasedMF,
    FoldIn,
    PureSVD,
    fold_in,
    n_candidates,
    two_stage_scores,
)

__all__ = [
    "BiasedMF",
    "CANDIDATES_PER_PICK",
    "FoldIn",
    "GENRES",
    "MF_MOVIELENS_100K",
    "PureSVD",
    "RecommenderBundle",
    "RecommenderModel",
    "fold_in",
    "n_candidates",
    "two_stage_scores",
]

logger = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent


class RecommenderModel(nn.Module):
    """Inference-side model: fixed parameters as buffers, scores for any user vector(s)."""

    def __init__(
        self, tensors: dict[str, torch.Tensor], reg_factors: float, reg_bias: float, reg_exponent: float
    ):
        super().__init__()
        for name, value in tensors.items():
            self.register_buffer(name, value)
        self.reg_factors = reg_factors
        self.reg_bias = reg_bias
        self.reg_exponent = reg_exponent

    @property
    def n_users(self) -> int:
        return int(self.user_bias.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_bias.shape[0])

    def forward(self, user_bias: torch.Tensor, user_vectors: torch.Tensor) -> torch.Tensor:
        """(B,) biases and (B, k) vectors → (B, n_items) predicted ratings (unclipped)."""
        return (
            self.global_mean
            + user_bias[:, None]
            + self.item_bias[None, :]
            + user_vectors @ self.item_factors.T
        )

    def implicit_scores(self, rated: torch.Tensor) -> torch.Tensor:
        """(B, n_items) 0/1 "has rated" indicators → (B, n_items) PureSVD candidate scores."""
        return (rated.to(self.ranking_factors.dtype) @ self.ranking_factors) @ self.ranking_factors.T

    def fold_in(self, items: torch.Tensor, ratings: torch.Tensor) -> FoldIn:
        return fold_in(
            items,
            ratings,
            global_mean=self.global_mean[0],
            item_bias=self.item_bias,
            item_factors=self.item_factors,
            implicit_factors=self.implicit_factors,
            reg_factors=self.reg_factors,
            reg_bias=self.reg_bias,
            reg_exponent=self.reg_exponent,
        )


@dataclass(frozen=True)
class RecommenderBundle:
    """One shipped checkpoint: weights, item metadata and what the service needs to use them."""

    weights_path: Path
    items_path: Path
    genres: tuple[str, ...] = GENRES
    rating_range: tuple[float, float] = (RATING_MIN, RATING_MAX)
    metadata_keys: tuple[str, ...] = field(default=("reg_factors", "reg_bias", "reg_exponent"))

    def metadata(self) -> dict[str, str]:
        with safe_open(str(self.weights_path), framework="pt") as handle:
            return dict(handle.metadata() or {})

    def get_model(self, device: torch.device | None = None) -> RecommenderModel:
        started = time.perf_counter()
        meta = self.metadata()
        tensors = load_file(str(self.weights_path))
        model = RecommenderModel(tensors, *(float(meta[key]) for key in self.metadata_keys)).eval()
        if device is not None:
            model = model.to(device)
        logger.info("loaded %s in %.0f ms", self.weights_path.name, (time.perf_counter() - started) * 1000)
        return model

    def get_items(self) -> list[dict]:
        return json.loads(self.items_path.read_text(encoding="utf-8"))["items"]

    def estimator(self):
        """An unfitted estimator with the shipped model's trainer and hyper-parameters (from the weights'
        metadata), so that benchmarks retrain exactly what ships."""
        from models.recommend.als import BiasedALS

        meta = self.metadata()
        if meta.get("trainer") == "als":
            return BiasedALS(
                n_factors=int(meta["n_factors"]),
                reg_factors=float(meta["reg_factors"]),
                reg_bias=float(meta["reg_bias"]),
                reg_exponent=float(meta["reg_exponent"]),
                n_sweeps=int(meta["n_sweeps"]),
                init_scale=float(meta["init_scale"]),
                random_state=int(meta["random_state"]),
            )
        return BiasedMF(
            n_factors=int(meta["n_factors"]),
            reg_factors=float(meta["reg_factors"]),
            reg_bias=float(meta["reg_bias"]),
            reg_implicit=float(meta["reg_implicit"]),
            reg_exponent=float(meta["reg_exponent"]),
            implicit=meta["implicit"] == "True",
            n_epochs=int(meta["n_epochs"]),
            lr=float(meta["lr"]),
            random_state=int(meta["random_state"]),
        )

    def metrics(self) -> dict:
        """The evaluation record (metrics.json beside the weights), or {} before the first evaluation."""
        path = self.weights_path.parent / "metrics.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


MF_MOVIELENS_100K = RecommenderBundle(
    weights_path=PACKAGE_DIR / "mf.safetensors", items_path=PACKAGE_DIR / "items.json"
)
"""Biased MF (ALS, models/recommend/als.py) trained on MovieLens-100K fold u1.base (80,000 ratings).

Data: GroupLens MovieLens-100K, research use only, no redistribution; only parameters and item
metadata ship. Licence of the weights follows the data's terms (research, non-commercial).
"""


@functools.lru_cache(maxsize=1)
def get_model() -> RecommenderModel:
    from models.runtime import select_device

    return MF_MOVIELENS_100K.get_model(select_device())
