"""The ALS trainer of the shipped rating model: exact ridge steps, fold-in consistency, seeds, speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.recommend.als import BiasedALS
from models.recommend.data import Ratings
from models.recommend.evaluation import rating_metrics


@pytest.fixture(scope="module")
def synthetic() -> Ratings:
    """A rank-2 taste matrix plus biases, 60% observed, with noise (not MovieLens data)."""
    rng = np.random.default_rng(0)
    n_users, n_items = 80, 60
    taste = rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_items))
    full = 3.5 + 0.4 * rng.normal(size=(n_users, 1)) + 0.4 * rng.normal(size=(1, n_items)) + 0.6 * taste
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.6)
    ratings = np.clip(np.round(full[users, items] + 0.3 * rng.normal(size=len(users))), 1, 5)
    return Ratings(users.astype(np.int64), items.astype(np.int64), ratings.astype(np.float32))


def _fit(data: Ratings, **params) -> BiasedALS:
    defaults = {"n_factors": 4, "reg_factors": 0.5, "n_sweeps": 15}
    return BiasedALS(**{**defaults, **params}).fit(data.users, data.items, data.ratings, 80, 60)


def test_fit_returns_self_with_learned_attributes_only_after_fit(synthetic):
    model = BiasedALS(n_factors=3)
    assert not hasattr(model, "item_factors_")
    fitted = model.fit(synthetic.users, synthetic.items, synthetic.ratings, 80, 60)
    assert fitted is model and model.item_factors_.shape == (60, 3) and model.user_vectors_.shape == (80, 3)
    assert model.implicit_factors_.shape == (60, 0) and model.fit_seconds_ > 0
    assert model.get_params()["trainer"] == "als"


def test_learns_the_synthetic_matrix_better_than_biases_alone(synthetic):
    train = np.random.default_rng(1).random(len(synthetic)) < 0.8
    sub = Ratings(synthetic.users[train], synthetic.items[train], synthetic.ratings[train])
    model = BiasedALS(n_factors=4, reg_factors=0.5, n_sweeps=15).fit(
        sub.users, sub.items, sub.ratings, 80, 60
    )
    biases = BiasedALS(n_factors=1, reg_factors=1e6, n_sweeps=15).fit(
        sub.users, sub.items, sub.ratings, 80, 60
    )
    held = ~train
    ours = rating_metrics(
        model.predict(synthetic.users[held], synthetic.items[held]), synthetic.ratings[held]
    )
    base = rating_metrics(
        biases.predict(synthetic.users[held], synthetic.items[held]), synthetic.ratings[held]
    )
    assert ours["rmse"] < 0.85 * base["rmse"]


def test_stored_users_are_the_fold_in_of_their_ratings(synthetic):
    """The last step of every sweep is the user step, so the service's fold-in reproduces training."""
    model = _fit(synthetic)
    for user in (0, 17, 79):
        mask = synthetic.users == user
        solution = model.fold_in(synthetic.items[mask], synthetic.ratings[mask])
        assert float(solution.bias) == pytest.approx(float(model.user_bias_[user]), abs=2e-4)
        assert torch.allclose(solution.vector, model.user_vectors_[user], atol=2e-4)


def test_more_sweeps_lower_the_training_error(synthetic):
    def train_rmse(sweeps: int) -> float:
        model = _fit(synthetic, n_sweeps=sweeps)
        return rating_metrics(model.predict(synthetic.users, synthetic.items), synthetic.ratings)["rmse"]

    assert train_rmse(1) > train_rmse(4) > train_rmse(15) - 1e-6


def test_same_seed_repeats_and_other_seed_differs(synthetic):
    a, b, c = (
        _fit(synthetic, random_state=1),
        _fit(synthetic, random_state=1),
        _fit(synthetic, random_state=2),
    )
    assert torch.equal(a.item_factors_, b.item_factors_)
    assert not torch.equal(a.item_factors_, c.item_factors_)


@pytest.mark.parametrize(("name", "low", "high"), [("reg_factors", 0.1, 20.0), ("reg_bias", 0.0, 50.0)])
def test_changing_one_hyperparameter_changes_the_result(synthetic, name, low, high):
    small, large = _fit(synthetic, **{name: low}), _fit(synthetic, **{name: high})
    if name == "reg_factors":
        assert large.item_factors_.norm() < 0.5 * small.item_factors_.norm()
    else:
        assert large.item_bias_.abs().mean() < 0.5 * small.item_bias_.abs().mean()


def test_users_and_items_without_ratings_get_zero_parameters():
    users, items = np.array([0, 0, 1]), np.array([0, 1, 1])
    model = BiasedALS(n_factors=2, n_sweeps=3).fit(users, items, np.array([5.0, 3.0, 4.0]), 4, 3)
    assert torch.all(model.user_bias_[2:] == 0) and torch.all(model.item_factors_[2] == 0)
    assert np.all(np.isfinite(model.predict([3], [2])))


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="zero ratings"):
        BiasedALS().fit([], [], [], 3, 3)
