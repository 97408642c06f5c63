"""Rating and top-N metrics for the recommender, with the protocol stated once here.

Rating accuracy: RMSE and MAE of predictions clipped to 1–5 over every test rating.

Top-N (Precision@K, Recall@K, NDCG@K): for each test user with at least one *relevant* test item
(test rating ≥ 4), rank **all** items the user did not rate in the training file (so test items
compete with every other unseen film, rated or not), take the top K. A hit is a relevant test item
in that list. Precision = hits / K; Recall = hits / number of relevant test items; NDCG uses binary
gains with the ideal list holding min(K, #relevant) hits. Each figure is the mean over those users.
Ties (e.g. the constant global-mean baseline) are broken at random with a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from models.recommend.data import RELEVANT_RATING, Ratings
from models.recommend.mf import RATING_MAX, RATING_MIN

PROTOCOL = (
    "relevant = test rating >= 4; for each test user with >= 1 relevant item, rank all items not rated "
    "in the training file (test and never-rated items alike), cut at K; mean over those users; "
    "ties broken at random (seed 0)"
)


def rating_metrics(predictions: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    predictions = np.clip(np.asarray(predictions, dtype=np.float64), RATING_MIN, RATING_MAX)
    error = predictions - np.asarray(truth, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


def ranking_metrics(
    scores: torch.Tensor, train: Ratings, test: Ratings, k: int = 10, seed: int = 0
) -> dict[str, float]:
    """Precision/Recall/NDCG@k from a (n_users, n_items) score matrix; see the module docstring."""
    scores = scores.detach().to("cpu", torch.float64).clone()
    generator = torch.Generator().manual_seed(seed)
    scores += torch.rand(scores.shape, generator=generator, dtype=torch.float64) * 1e-6  # tie-break
    scores[torch.as_tensor(train.users), torch.as_tensor(train.items)] = -math.inf
    relevant = torch.zeros(scores.shape, dtype=torch.bool)
    liked = test.ratings >= RELEVANT_RATING
    relevant[torch.as_tensor(test.users[liked]), torch.as_tensor(test.items[liked])] = True
    n_relevant = relevant.sum(dim=1)  # (n_users,)
    users = torch.nonzero(n_relevant > 0).squeeze(1)
    top = scores[users].topk(k, dim=1).indices  # (U, k)
    hits = relevant[users].gather(1, top).double()  # (U, k)
    n_rel = n_relevant[users].double()
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))  # (k,)
    dcg = hits @ discounts
    ideal = torch.cumsum(discounts, 0)[(n_rel.clamp(max=k) - 1).long()]
    return {
        f"precision@{k}": float((hits.sum(1) / k).mean()),
        f"recall@{k}": float((hits.sum(1) / n_rel).mean()),
        f"ndcg@{k}": float((dcg / ideal).mean()),
        "ranked_users": int(users.numel()),
    }
