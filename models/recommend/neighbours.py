""" "More like this": each film's nearest films, weighted by how many people rated both.

The cosine of two films' factor vectors alone ranks films that few people saw next to blockbusters:
Star Wars' raw neighbours included Fierce Creatures, Meet John Doe and Chungking Express (17-59
co-raters, cosine 0.77-0.81). Shrinking the cosine by its support, as in Koren's neighbourhood
models (KDD 2008), keeps neighbours that many viewers actually compare:

    score(i, j) = cos(q_i, q_j) · n_ij / (n_ij + SHRINK)     n_ij = training users who rated both

SHRINK = 50 was read off the neighbours of a handful of well-known films (Star Wars, The Godfather,
Toy Story, Fargo) on the training file; no test file is involved.

The table ships as `neighbours.safetensors`: for every film its TOP best-scoring films (0-based
indices) and their co-rating counts. Counts of people are aggregate figures, like the per-film rating
counts already in the weights; no rating ships.

    python -m models.recommend.neighbours --data-dir ../shared/data/movielens-100k
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models.recommend.data import N_ITEMS, N_USERS, read_ratings, require_data_dir

PACKAGE_DIR = Path(__file__).resolve().parent
NEIGHBOURS_PATH = PACKAGE_DIR / "neighbours.safetensors"
TOP = 40  # neighbours kept per film (the page shows 8, a genre filter picks among the 40)
SHRINK = 50  # co-raters at which the cosine counts half


def co_rating_counts(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """(n_items, n_items) how many users rated both films; the diagonal holds each film's count."""
    rated = np.zeros((n_users, n_items), dtype=np.float32)
    rated[users, items] = 1.0
    return (rated.T @ rated).round().astype(np.int64)


def neighbour_table(
    item_factors: np.ndarray, counts: np.ndarray, top: int = TOP, shrink: float = SHRINK
) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, top) neighbour indices, best first, and their co-rating counts."""
    factors = np.asarray(item_factors, dtype=np.float64)
    unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-8)
    cosine = unit @ unit.T  # (n_items, n_items)
    support = counts.astype(np.float64)
    np.fill_diagonal(support, 0.0)  # a film is never its own neighbour
    score = cosine * support / (support + shrink)
    score[support == 0] = -np.inf
    order = np.argsort(-score, axis=1, kind="stable")[:, :top]  # (n_items, top)
    return order, np.take_along_axis(support, order, axis=1).astype(np.int64)


def load_neighbours(path: Path = NEIGHBOURS_PATH) -> tuple[np.ndarray, np.ndarray] | None:
    """(indices, support) as int64 arrays, or None when the table has not been built."""
    if not path.is_file():
        return None
    tensors = load_file(str(path))
    return tensors["index"].numpy().astype(np.int64), tensors["support"].numpy().astype(np.int64)


def build(data_dir: Path, train_file: str, item_factors: np.ndarray, out: Path = NEIGHBOURS_PATH) -> dict:
    table = read_ratings(data_dir / train_file)
    counts = co_rating_counts(table.users, table.items, N_USERS, N_ITEMS)
    index, support = neighbour_table(item_factors, counts)
    metadata = {"train_file": train_file, "top": str(TOP), "shrink": str(SHRINK)}
    save_file(
        {
            "index": torch.as_tensor(index, dtype=torch.int16),
            "support": torch.as_tensor(support, dtype=torch.int16),
        },
        str(out),
        metadata=metadata,
    )
    os.chmod(out, 0o644)
    return {"wrote": str(out), **metadata, "films": int(index.shape[0])}


def main(argv: list[str] | None = None) -> int:
    from models.recommend import MF_MOVIELENS_100K

    parser = argparse.ArgumentParser(
        prog="python -m models.recommend.neighbours", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", help="MovieLens-100K folder")
    parser.add_argument("--out", default=str(NEIGHBOURS_PATH))
    args = parser.parse_args(argv)
    data_dir = require_data_dir(args.data_dir)
    train_file = MF_MOVIELENS_100K.metadata().get("train_file", "u1.base")  # the weights' own training file
    factors = load_file(str(MF_MOVIELENS_100K.weights_path))["item_factors"].double().numpy()
    print(json.dumps(build(data_dir, train_file, factors, Path(args.out))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
