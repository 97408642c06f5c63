"""The committed artifact: what it holds, the committed metrics, and (slow) its accuracy on u1.test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.recommend import MF_MOVIELENS_100K, get_model
from models.recommend.data import N_ITEMS, N_USERS, read_ratings
from models.recommend.evaluation import ranking_metrics, rating_metrics
from tests.conftest import REPO_ROOT, dataset_dir

PACKAGE = REPO_ROOT / "models" / "recommend"


def test_artifact_holds_parameters_and_item_metadata_only():
    tensors = load_file(str(MF_MOVIELENS_100K.weights_path))
    assert set(tensors) == {
        "global_mean",
        "user_bias",
        "user_vectors",
        "item_bias",
        "item_factors",
        "implicit_factors",
        "item_count",
        "ranking_factors",
    }
    meta = MF_MOVIELENS_100K.metadata()
    k = int(meta["n_factors"])
    assert tensors["item_factors"].shape == (N_ITEMS, k) and tensors["user_vectors"].shape == (N_USERS, k)
    assert meta["train_file"] == "u1.base" and meta["trainer"] == "als"
    assert meta["command"].startswith("python -m models train recommend")
    items = MF_MOVIELENS_100K.get_items()
    assert len(items) == N_ITEMS and set(items[0]) == {"id", "title", "year", "genres"}
    assert items[0]["title"] == "Toy Story (1995)" and items[0]["year"] == 1995
    # no rating files or per-user data anywhere in the package
    names = {path.name for path in PACKAGE.rglob("*") if path.is_file()}
    assert not names & {"u.data", "u1.base", "u1.test", "u.user"}
    assert sum(path.stat().st_size for path in PACKAGE.rglob("*") if path.is_file()) < 5_000_000


def test_committed_metrics_meet_the_target_and_beat_the_baselines():
    metrics = json.loads((PACKAGE / "metrics.json").read_text())
    assert metrics["task"] == "recommend" and metrics["folds"] == 5
    assert metrics["rmse"] < 0.934  # Surprise SVD's published 5-fold RMSE on MovieLens-100K
    assert metrics["hyperparameters"] == MF_MOVIELENS_100K.estimator().get_params()  # evaluated = shipped
    assert metrics["rmse"] < metrics["baseline_bias_rmse"] < metrics["baseline_global_mean_rmse"]
    assert len(metrics["per_fold"]) == 5 and "relevant = test rating >= 4" in metrics["protocol"]


@pytest.mark.slow
def test_committed_weights_on_u1_test():
    """The shipped model was fitted on u1.base only, so u1.test is an honest held-out check."""
    folder = dataset_dir("movielens-100k", "u1.test")
    train, test = read_ratings(folder / "u1.base"), read_ratings(folder / "u1.test")
    model = get_model().to("cpu")
    users, items = torch.as_tensor(test.users), torch.as_tensor(test.items)
    with torch.inference_mode():
        scores = model(model.user_bias, model.user_vectors)  # (943, 1682)
        predictions = scores[users, items].numpy()
    figures = rating_metrics(predictions, test.ratings)
    # The floors are the u1 fold of the committed evaluation (`make evaluate`, metrics.json): the same
    # split and hyper-parameters, so the shipped weights give exactly those figures (to rounding).
    u1 = next(
        fold
        for fold in json.loads((PACKAGE / "metrics.json").read_text())["per_fold"]
        if fold["fold"] == "u1"
    )
    assert figures["rmse"] <= u1["model"]["rmse"] + 0.0005, (figures, u1["model"])
    assert figures["mae"] <= u1["model"]["mae"] + 0.0005, (figures, u1["model"])
    counts = torch.bincount(torch.as_tensor(train.items), minlength=N_ITEMS)
    assert torch.equal(counts.float(), model.item_count.cpu())
    # Films by predicted rating among those with at least 20 ratings: the rating model's own top-10.
    ranking = ranking_metrics(scores.masked_fill(counts[None, :] < 20, -np.inf), train, test, k=10)
    measured = u1["mf_rating_order_min20"]["precision@10"]
    assert ranking["precision@10"] >= measured - 0.005, (ranking, measured)
    assert ranking["precision@10"] > u1["baseline_bias"]["precision@10"]  # and above the bias-only model
