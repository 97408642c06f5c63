"""Biased matrix factorisation trained by alternating least squares (ALS), vectorised.

The model and the objective are those of models.recommend.mf without the SVD++ implicit term:

    r̂(u, i) = μ + b_u + b_i + p_u · q_i
    Σ (r − r̂)² + λ Σ_u n_u^α ‖p_u‖² + λ Σ_i n_i^α ‖q_i‖² + λ_b (Σ_u n_u^α b_u² + Σ_i n_i^α b_i²)

With the items fixed, each user's (b_u, p_u) is a ridge regression on the design rows [1, q_i] of
the films they rated; with the users fixed, each item's (b_i, q_i) is one on [1, p_u]. ALS
alternates the two exact solves. The user step is exactly the service's fold-in, so a new user
folded in at serving time gets what training would have given them.

Why it is fast: every user's normal equations G_u = Σ_{i ∈ N(u)} a_i a_iᵀ come from ONE sparse ×
dense product, R · [upper triangle of a_i a_iᵀ per item] (R the 0/1 "who rated what" matrix in CSR;
cost nnz · d(d+1)/2), and the right-hand sides from R_y · A with the residuals as values. Then a
batched Cholesky solve for all users at once; the item step is the same with Rᵀ. No Python loop
over users, items or ratings. The sweep count is fixed (no convergence test), so training time is
predictable: roughly linear in the number of ratings (bench/recommend_scaling.py measures it).
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import torch

from models.recommend.mf import BiasedMF

logger = logging.getLogger(__name__)


# Each sparse × dense product gathers one dense row per rating. When the dense operand outgrows a
# core's L2 cache (512 KiB here) the gathers miss: one block over 16,820 films made the 10 M point
# several times slower per rating than the 100 K one. Beyond SINGLE_BLOCK_BYTES the columns are cut
# into blocks of BLOCK_BYTES; below it one block is faster (MovieLens-100K: 0.30 s vs 0.38 s).
BLOCK_BYTES = 256 * 1024
SINGLE_BLOCK_BYTES = 1024 * 1024


def _block_columns(n_cols: int, row_bytes: int) -> int:
    if n_cols * row_bytes <= SINGLE_BLOCK_BYTES:
        return max(n_cols, 1)
    return max(256, BLOCK_BYTES // row_bytes)


class _Side:
    """One side of the rating matrix (rows = users, or rows = items) as column blocks of CSR matrices,
    built once per fit: (first column, last column + 1, 0/1 matrix, ratings matrix) per block."""

    def __init__(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        ratings: np.ndarray,
        n_rows: int,
        n_cols: int,
        block_cols: int,
        dtype: torch.dtype,
    ):
        from scipy.sparse import csc_matrix

        # scipy builds the layouts with counting sorts: linear in the number of ratings.
        by_column = csc_matrix((np.asarray(ratings, dtype=np.float32), (rows, cols)), shape=(n_rows, n_cols))
        self.n_rows = n_rows
        self.counts = torch.as_tensor(np.bincount(rows, minlength=n_rows), dtype=dtype)
        self.blocks = []
        for start in range(0, n_cols, block_cols):
            stop = min(start + block_cols, n_cols)
            block = by_column[:, start:stop].tocsr()
            block.sort_indices()
            crow = torch.from_numpy(block.indptr.astype(np.int64))
            col = torch.from_numpy(block.indices.astype(np.int64))
            values = torch.from_numpy(block.data).to(dtype)
            shape = (n_rows, stop - start)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR × dense is stable
                warnings.simplefilter("ignore", UserWarning)
                binary = torch.sparse_csr_tensor(
                    crow, col, torch.ones_like(values), shape, check_invariants=False
                )
                rated = torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
            self.blocks.append((start, stop, binary, rated))

    def product(self, dense: torch.Tensor, ratings: bool = False) -> torch.Tensor:
        """(0/1 or ratings matrix) @ dense, block by block: (n_rows, dense columns)."""
        out = dense.new_zeros(self.n_rows, dense.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for start, stop, binary, rated in self.blocks:
                out += (rated if ratings else binary) @ dense[start:stop]
        return out


def _solve_side(
    side: _Side, other: torch.Tensor, offset: torch.Tensor, penalty: torch.Tensor, triu: torch.Tensor
) -> torch.Tensor:
    """Ridge solutions [bias, factors] for every row of `side`, the other side fixed.

    other: (n_cols, d) design rows [1, factors] of the other side; offset: (n_cols,) μ + its biases,
    so the targets are r − offset; penalty: (n_rows, d) diagonal of the penalty; triu: the upper
    triangle's (row, col) indices. Two sparse × dense products give every row's normal equations:

        Σ a aᵀ and Σ offset·a  = binary · [a aᵀ (upper triangle), offset·a]
        Σ r a                  = ratings · a
    """
    n_rows, d = side.n_rows, other.shape[1]
    outer = (other[:, :, None] * other[:, None, :]).reshape(-1, d * d)  # (n_cols, d²)
    upper = torch.index_select(outer, 1, triu[0] * d + triu[1])  # (n_cols, d(d+1)/2)
    sums = side.product(torch.cat([upper, offset[:, None] * other], dim=1))  # (n_rows, d(d+1)/2 + d)
    rhs = side.product(other, ratings=True) - sums[:, upper.shape[1] :]  # (n_rows, d)
    gram = other.new_zeros(n_rows, d, d)
    gram[:, triu[0], triu[1]] = sums[:, : upper.shape[1]]
    gram = gram + gram.transpose(1, 2)
    gram.diagonal(dim1=1, dim2=2).mul_(0.5).add_(penalty)  # the diagonal was added twice
    factor, _ = torch.linalg.cholesky_ex(gram)  # the penalty keeps every system positive definite
    return torch.cholesky_solve(rhs.unsqueeze(2), factor).squeeze(2)


class BiasedALS(BiasedMF):
    """Biased MF fitted by ALS, scikit-learn style; predict, fold_in and state_dict as BiasedMF.

    Parameters
    ----------
    n_factors: latent dimension k.
    reg_factors, reg_bias: λ and λ_b; reg_exponent: α, how the penalty grows with rating counts.
    n_sweeps: ALS sweeps (one user step plus one item step each).
    init_scale: standard deviation of the random initial user factors.
    random_state: seed of the initial user factors.
    """

    def __init__(
        self,
        n_factors: int = 10,
        reg_factors: float = 1.5,
        reg_bias: float = 0.5,
        reg_exponent: float = 0.5,
        n_sweeps: int = 6,
        init_scale: float = 0.1,
        random_state: int | None = 0,
    ):
        self.n_factors = n_factors
        self.reg_factors = reg_factors
        self.reg_bias = reg_bias
        self.reg_exponent = reg_exponent
        self.n_sweeps = n_sweeps
        self.init_scale = init_scale
        self.random_state = random_state
        self.implicit = False  # the SVD++ term couples all of a user's items: not an ALS ridge step
        self.reg_implicit = 0.0
        self.device = "cpu"

    def get_params(self) -> dict:
        keys = (
            "n_factors",
            "reg_factors",
            "reg_bias",
            "reg_exponent",
            "n_sweeps",
            "init_scale",
            "random_state",
        )
        return {"trainer": "als", **{key: getattr(self, key) for key in keys}}

    def fit(self, users, items, ratings, n_users: int | None = None, n_items: int | None = None) -> BiasedALS:
        """Learn from 0-based user and item indices and their ratings; returns self."""
        started = time.perf_counter()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.size == 0:
            raise ValueError("cannot fit on zero ratings")
        n_users = int(n_users if n_users is not None else users.max() + 1)
        n_items = int(n_items if n_items is not None else items.max() + 1)
        dtype = torch.float32
        ratings = np.asarray(ratings, dtype=np.float32)
        d = self.n_factors + 1
        row_bytes = (d * (d + 1) // 2 + d) * 4  # one dense row of the Gram product, float32
        by_user = _Side(users, items, ratings, n_users, n_items, _block_columns(n_items, row_bytes), dtype)
        by_item = _Side(items, users, ratings, n_items, n_users, _block_columns(n_users, row_bytes), dtype)
        triu = torch.triu_indices(d, d)

        def penalties(counts: torch.Tensor) -> torch.Tensor:  # (n, d): λ_b n^α on the bias, λ n^α on factors
            weight = counts.clamp(min=1) ** self.reg_exponent
            scale = torch.full((d,), self.reg_factors, dtype=dtype)
            scale[0] = self.reg_bias
            return weight[:, None] * scale[None, :]

        user_penalty, item_penalty = penalties(by_user.counts), penalties(by_item.counts)
        mean = float(ratings.mean(dtype=np.float64))
        generator = torch.Generator().manual_seed(0 if self.random_state is None else int(self.random_state))
        user_rows = torch.cat(  # [b_u, p_u]: random factors; the first item step starts from them
            [
                torch.zeros(n_users, 1),
                torch.randn(n_users, self.n_factors, generator=generator) * self.init_scale,
            ],
            dim=1,
        ).to(dtype)
        ones_u, ones_i = torch.ones(n_users, 1, dtype=dtype), torch.ones(n_items, 1, dtype=dtype)
        for _ in range(self.n_sweeps):
            design = torch.cat([ones_u, user_rows[:, 1:]], dim=1)
            item_rows = _solve_side(by_item, design, mean + user_rows[:, 0], item_penalty, triu)
            # The user step last: every stored user is exactly the fold-in of their ratings.
            design = torch.cat([ones_i, item_rows[:, 1:]], dim=1)
            user_rows = _solve_side(by_user, design, mean + item_rows[:, 0], user_penalty, triu)

        self.n_users_, self.n_items_ = n_users, n_items
        self.global_mean_ = mean
        self.user_bias_ = user_rows[:, 0].contiguous()
        self.user_factors_ = user_rows[:, 1:].contiguous()
        self.user_vectors_ = self.user_factors_  # no implicit part
        self.item_bias_ = item_rows[:, 0].contiguous()
        self.item_factors_ = item_rows[:, 1:].contiguous()
        self.implicit_factors_ = torch.zeros(n_items, 0, dtype=dtype)
        self.item_count_ = by_item.counts.clone()
        self.loss_history_ = []
        self.fit_seconds_ = time.perf_counter() - started
        logger.info("fitted %s in %.3f s", self.get_params(), self.fit_seconds_)
        return self
