"""Biased matrix factorisation with implicit feedback (SVD++-style), trained full-batch in PyTorch.

Prediction for user u and item i (Koren 2008, "Factorization meets the neighborhood"):

    r̂(u, i) = μ + b_u + b_i + q_i · z_u,   z_u = p_u + |N(u)|^-½ Σ_{j ∈ N(u)} y_j

where N(u) is the set of items u rated (which films, not how). Training minimises, over all
training ratings at once (full batch, Adam),

    Σ (r − r̂)² + Σ_u λ n_u^α (‖p_u‖² ) + Σ_i λ n_i^α ‖q_i‖² + λ_y Σ_i n_i^α ‖y_i‖²
               + λ_b (Σ_u n_u^α b_u² + Σ_i n_i^α b_i²)

n_u and n_i are rating counts; α = 1 is SGD's per-rating penalty, α = 0 a plain per-entity
penalty. Given the item parameters, each user's (b_u, p_u) is the solution of a ridge regression,
so a new user is *folded in* by solving that same regression (`fold_in`): no retraining, and the
result equals what training would have given that user if the items did not move.

Conventions follow scikit-learn and Surprise: hyper-parameters and `random_state` go to the
constructor, `fit` learns everything and returns `self`, learned attributes end in `_`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

RATING_MIN, RATING_MAX = 1.0, 5.0


class MatrixFactorization(nn.Module):
    """The trainable parameters. `implicit_factors` is empty (width 0) when implicit feedback is off."""

    def __init__(
        self, n_users: int, n_items: int, n_factors: int, implicit: bool, generator: torch.Generator
    ):
        super().__init__()
        init = 0.01  # small random start: factors grow only as far as the data supports
        self.user_factors = nn.Parameter(torch.randn(n_users, n_factors, generator=generator) * init)
        self.item_factors = nn.Parameter(torch.randn(n_items, n_factors, generator=generator) * init)
        width = n_factors if implicit else 0
        self.implicit_factors = nn.Parameter(torch.randn(n_items, width, generator=generator) * init)
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("global_mean", torch.zeros(()))

    def user_vectors(self, implicit_matrix: torch.Tensor | None) -> torch.Tensor:
        """z_u = p_u + |N(u)|^-½ Σ y_j, for every user: (n_users, k)."""
        if implicit_matrix is None or self.implicit_factors.shape[1] == 0:
            return self.user_factors
        return self.user_factors + torch.sparse.mm(implicit_matrix, self.implicit_factors)

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, implicit_matrix: torch.Tensor | None
    ) -> torch.Tensor:
        vectors = self.user_vectors(implicit_matrix)  # (n_users, k)
        dot = (vectors[users] * self.item_factors[items]).sum(dim=1)  # (N,)
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dot


def implicit_matrix(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """Sparse (n_users, n_items) matrix with |N(u)|^-½ where u rated i: the SVD++ implicit term."""
    counts = torch.bincount(users, minlength=n_users).clamp(min=1).float()
    values = counts[users].rsqrt()
    return torch.sparse_coo_tensor(
        torch.stack([users, items]), values, (n_users, n_items), check_invariants=False
    ).coalesce()


@dataclass(frozen=True)
class FoldIn:
    """A user solved from their ratings with the item parameters fixed.

    Fields are numpy arrays or torch tensors, matching what `fold_in` was given.
    """

    bias: Any  # () b_u
    vector: Any  # (k,) z_u = p_u + implicit part
    # Exact linear attribution: personal score of item j = Σ_i contribution(j, i) over rated items i.
    solve_weights: Any  # (k+1, n) W = (AᵀA + Λ)⁻¹Aᵀ: rated item i's weight in (b_u, p_u)
    targets: Any  # (n,) r_i − μ − b_i − q_i · implicit part
    implicit_rows: Any  # (n, k) y_i / √n, each rated item's share of the implicit part

    def contributions(self, item_factors):
        """(m, n): how much each rated item adds to the predicted rating of each of m candidate items.

        Rows sum to b_u + q_j · z_u, the part of the prediction that is personal.
        """
        explicit = (
            self.solve_weights[0][None, :] + item_factors @ self.solve_weights[1:]
        ) * self.targets  # (m, n)
        return explicit + item_factors @ self.implicit_rows.T  # (m, n)


def _float64(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().to("cpu", torch.float64).numpy()
    return np.asarray(array, dtype=np.float64)


def fold_in(
    items,
    ratings,
    *,
    global_mean,
    item_bias,
    item_factors,
    implicit_factors,
    reg_factors: float,
    reg_bias: float,
    reg_exponent: float,
) -> FoldIn:
    """Regularised least squares for (b_u, p_u) given the items (the user's slice of the training loss).

    items: (n,) int indices; ratings: (n,) float; parameters as numpy arrays or torch tensors. Solved
    in float64 with numpy on the CPU: a (k+1)² system is far too small for an accelerator, and
    numpy runs it in the calling thread (torch's intra-op pool adds tens of ms on a busy 2-core
    machine). Returns numpy arrays, or float32 tensors on item_factors' device when given tensors.
    """
    index = np.asarray(items.cpu() if isinstance(items, torch.Tensor) else items, dtype=np.int64)
    n = len(index)
    q = _float64(item_factors[index])  # (n, k)
    k = q.shape[1]
    implicit_rows = np.zeros_like(q)
    if implicit_factors.shape[1] > 0 and n > 0:
        implicit_rows = _float64(implicit_factors[index]) / np.sqrt(n)  # (n, k)
    implicit = implicit_rows.sum(axis=0)  # (k,)
    targets = _float64(ratings) - float(global_mean) - _float64(item_bias[index]) - q @ implicit  # (n,)
    design = np.concatenate([np.ones((n, 1)), q], axis=1)  # (n, k+1)
    weight = max(n, 1) ** reg_exponent
    penalty = np.full(k + 1, reg_factors * weight)
    penalty[0] = reg_bias * weight
    solve_weights = np.linalg.solve(design.T @ design + np.diag(penalty), design.T)  # (k+1, n)
    solution = solve_weights @ targets  # (k+1,)
    fields = {
        "bias": solution[0],
        "vector": solution[1:] + implicit,
        "solve_weights": solve_weights,
        "targets": targets,
        "implicit_rows": implicit_rows,
    }
    if isinstance(item_factors, torch.Tensor):
        fields = {
            key: torch.as_tensor(value, dtype=torch.float32, device=item_factors.device)
            for key, value in fields.items()
        }
    return FoldIn(**fields)


class BiasedMF:
    """Biased matrix factorisation (optionally SVD++ implicit terms), scikit-learn style.

    Parameters
    ----------
    n_factors: latent dimension k (0 gives the user + item bias baseline).
    reg_factors, reg_bias, reg_implicit: λ, λ_b, λ_y of the objective in the module docstring.
    reg_exponent: α, how the penalty scales with an entity's rating count.
    implicit: add the SVD++ term |N(u)|^-½ Σ y_j to each user's vector.
    n_epochs: full-batch Adam steps; lr: Adam learning rate.
    random_state: seed of the initial factors.
    device: torch device for training (None: models.runtime.select_device()).
    """

    def __init__(
        self,
        n_factors: int = 100,
        reg_factors: float = 1.5,
        reg_bias: float = 0.5,
        reg_implicit: float = 50.0,
        reg_exponent: float = 0.5,
        implicit: bool = True,
        n_epochs: int = 100,
        lr: float = 0.03,
        random_state: int | None = 0,
        device: str | torch.device | None = None,
    ):
        self.n_factors = n_factors
        self.reg_factors = reg_factors
        self.reg_bias = reg_bias
        self.reg_implicit = reg_implicit
        self.reg_exponent = reg_exponent
        self.implicit = implicit
        self.n_epochs = n_epochs
        self.lr = lr
        self.random_state = random_state
        self.device = device

    def get_params(self) -> dict:
        keys = ("n_factors", "reg_factors", "reg_bias", "reg_implicit", "reg_exponent", "implicit")
        return {key: getattr(self, key) for key in keys + ("n_epochs", "lr", "random_state")}

    def fit(self, users, items, ratings, n_users: int | None = None, n_items: int | None = None) -> BiasedMF:
        """Learn from 0-based user and item indices and their ratings; returns self."""
        from models.runtime import select_device

        device = torch.device(self.device) if self.device is not None else select_device()
        users_t = torch.as_tensor(np.asarray(users), dtype=torch.long, device=device)
        items_t = torch.as_tensor(np.asarray(items), dtype=torch.long, device=device)
        ratings_t = torch.as_tensor(np.asarray(ratings), dtype=torch.float32, device=device)
        if users_t.numel() == 0:
            raise ValueError("cannot fit on zero ratings")
        n_users = int(n_users if n_users is not None else users_t.max() + 1)
        n_items = int(n_items if n_items is not None else items_t.max() + 1)
        generator = torch.Generator().manual_seed(0 if self.random_state is None else int(self.random_state))
        started = time.perf_counter()

        model = MatrixFactorization(n_users, n_items, self.n_factors, self.implicit, generator).to(device)
        model.global_mean.fill_(ratings_t.mean())
        user_count = torch.bincount(users_t, minlength=n_users).float()
        item_count = torch.bincount(items_t, minlength=n_items).float()
        user_weight = user_count.clamp(min=1) ** self.reg_exponent  # (n_users,)
        item_weight = item_count.clamp(min=1) ** self.reg_exponent  # (n_items,)
        implicit_m = implicit_matrix(users_t, items_t, n_users, n_items) if self.implicit else None
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        n = ratings_t.numel()
        history = []
        for _ in range(self.n_epochs):
            optimizer.zero_grad(set_to_none=True)
            error = model(users_t, items_t, implicit_m) - ratings_t
            penalty = (
                self.reg_factors * (user_weight @ model.user_factors.pow(2).sum(1))
                + self.reg_factors * (item_weight @ model.item_factors.pow(2).sum(1))
                + self.reg_implicit * (item_weight @ model.implicit_factors.pow(2).sum(1))
                + self.reg_bias
                * (user_weight @ model.user_bias.pow(2) + item_weight @ model.item_bias.pow(2))
            )
            loss = (error.pow(2).sum() + penalty) / n
            loss.backward()
            optimizer.step()
            history.append(float(loss.detach()))

        with torch.no_grad():
            vectors = model.user_vectors(implicit_m)
        cpu = torch.device("cpu")
        self.n_users_, self.n_items_ = n_users, n_items
        self.global_mean_ = float(model.global_mean)
        self.user_bias_ = model.user_bias.detach().to(cpu)
        self.item_bias_ = model.item_bias.detach().to(cpu)
        self.user_factors_ = model.user_factors.detach().to(cpu)  # p_u
        self.user_vectors_ = vectors.detach().to(cpu)  # z_u = p_u + implicit part
        self.item_factors_ = model.item_factors.detach().to(cpu)
        self.implicit_factors_ = model.implicit_factors.detach().to(cpu)
        self.item_count_ = item_count.to(cpu)
        self.loss_history_ = history
        self.fit_seconds_ = time.perf_counter() - started
        logger.info(
            "fitted %s in %.1f s (final loss %.4f)", self.get_params(), self.fit_seconds_, history[-1]
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_factors_"):
            raise RuntimeError("this BiasedMF is not fitted yet: call fit() first")

    def predict(self, users, items, clip: bool = True) -> np.ndarray:
        """Predicted ratings for known (0-based) user/item index pairs, clipped to 1–5."""
        self._check_fitted()
        users_t = torch.as_tensor(np.asarray(users), dtype=torch.long)
        items_t = torch.as_tensor(np.asarray(items), dtype=torch.long)
        dot = (self.user_vectors_[users_t] * self.item_factors_[items_t]).sum(1)
        pred = self.global_mean_ + self.user_bias_[users_t] + self.item_bias_[items_t] + dot
        if clip:
            pred = pred.clamp(RATING_MIN, RATING_MAX)
        return pred.numpy()

    def score_all(self) -> torch.Tensor:
        """(n_users, n_items) predicted ratings (unclipped), for ranking."""
        self._check_fitted()
        return (
            self.global_mean_
            + self.user_bias_[:, None]
            + self.item_bias_[None, :]
            + self.user_vectors_ @ self.item_factors_.T
        )

    def fold_in(self, items, ratings) -> FoldIn:
        """Solve a (new) user's bias and vector from their ratings, item parameters fixed."""
        self._check_fitted()
        return fold_in(
            torch.as_tensor(np.asarray(items), dtype=torch.long),
            torch.as_tensor(np.asarray(ratings), dtype=torch.float32),
            global_mean=torch.tensor(self.global_mean_),
            item_bias=self.item_bias_,
            item_factors=self.item_factors_,
            implicit_factors=self.implicit_factors_,
            reg_factors=self.reg_factors,
            reg_bias=self.reg_bias,
            reg_exponent=self.reg_exponent,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for safetensors: item and user parameters, no ratings."""
        self._check_fitted()
        return {
            "global_mean": torch.tensor([self.global_mean_], dtype=torch.float32),
            "user_bias": self.user_bias_.contiguous(),
            "user_vectors": self.user_vectors_.contiguous(),
            "item_bias": self.item_bias_.contiguous(),
            "item_factors": self.item_factors_.contiguous(),
            "implicit_factors": self.implicit_factors_.contiguous(),
            "item_count": self.item_count_.contiguous(),
        }


class PureSVD:
    """Implicit-feedback ranker: truncated SVD of the binary "who rated what" matrix (Cremonesi et al.,
    RecSys 2010). A user's score for item j is x V V_jᵀ, where x marks the films they rated (whatever
    the stars) and V holds the top right-singular vectors, so a new user folds in with one product.

    Used as the candidate stage of the service's top-N (which films people like you watch); the biased
    MF then orders the candidates by predicted rating.
    """

    def __init__(self, n_factors: int = 20, random_state: int | None = 0):
        self.n_factors = n_factors
        self.random_state = random_state

    def fit(self, users, items, n_users: int, n_items: int) -> PureSVD:
        """Top right-singular vectors of the sparse 0/1 matrix (ARPACK, fixed start vector): only the
        ratings are touched, so memory and time grow with the number of ratings, not users × items."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.linalg import svds

        started = time.perf_counter()
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        matrix = csr_matrix((np.ones(len(users)), (users, items)), shape=(n_users, n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        rank = min(self.n_factors, min(matrix.shape) - 1)
        rng = np.random.default_rng(0 if self.random_state is None else self.random_state)
        start = rng.standard_normal(min(matrix.shape))
        _, singular, vh = svds(matrix, k=rank, v0=start, solver="arpack")
        order = np.argsort(-singular, kind="stable")  # svds returns them ascending
        self.item_factors_ = torch.as_tensor(vh[order].T.copy(), dtype=torch.float32)  # (n_items, f)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def score(self, rated: torch.Tensor) -> torch.Tensor:
        """(B, n_items) 0/1 rated indicators → (B, n_items) implicit scores."""
        return (rated.float() @ self.item_factors_) @ self.item_factors_.T


CANDIDATES_PER_PICK = 2  # the top-K ranks max(20, 2·K) implicit candidates by predicted rating
MIN_CANDIDATES = 20  # so that for K ≤ 10 a shorter list is a prefix of a longer one (tuned at K = 10)


def n_candidates(k: int) -> int:
    """How many implicit candidates the two-stage top-k ranks (20 for k = 10, as tuned on a held-out slice)."""
    return max(MIN_CANDIDATES, CANDIDATES_PER_PICK * k)


def two_stage_scores(
    rating_scores: torch.Tensor, implicit_scores: torch.Tensor, allowed: torch.Tensor, n_candidates: int
) -> torch.Tensor:
    """The service's top-N ranking as a score matrix: predicted ratings of the n_candidates allowed items
    with the highest implicit score, −inf elsewhere. All arguments (B, n_items); allowed is bool.
    """
    implicit = implicit_scores.masked_fill(~allowed, -math.inf)
    n_candidates = max(1, min(n_candidates, implicit.shape[1]))
    candidates = implicit.topk(n_candidates, dim=1).indices  # (B, M)
    keep = torch.zeros_like(allowed).scatter_(1, candidates, True) & allowed
    return rating_scores.masked_fill(~keep, -math.inf)
