"""Unit tests of the matrix-factorisation estimator, fold-in and metrics on small synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.recommend.data import Ratings
from models.recommend.evaluation import ranking_metrics, rating_metrics
from models.recommend.mf import BiasedMF, PureSVD, two_stage_scores

N_USERS, N_ITEMS, RANK = 60, 40, 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is ~50x faster than two on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def synthetic() -> Ratings:
    """A rank-3 taste matrix plus biases and noise, half observed, ratings rounded into 1..5."""
    rng = np.random.default_rng(0)
    users_f = rng.normal(size=(N_USERS, RANK))
    items_f = rng.normal(size=(N_ITEMS, RANK))
    truth = (
        3.5
        + 0.3 * rng.normal(size=(N_USERS, 1))
        + 0.3 * rng.normal(size=(1, N_ITEMS))
        + 0.5 * users_f @ items_f.T
    )
    observed = rng.random((N_USERS, N_ITEMS)) < 0.5
    users, items = np.nonzero(observed)
    ratings = np.clip(np.round(truth[users, items] + 0.3 * rng.normal(size=len(users))), 1, 5).astype(
        np.float32
    )
    return Ratings(users=users.astype(np.int64), items=items.astype(np.int64), ratings=ratings)


def _fit(data: Ratings, **params) -> BiasedMF:
    defaults = {
        "n_factors": RANK,
        "reg_factors": 0.5,
        "reg_bias": 0.1,
        "reg_implicit": 1.0,
        "n_epochs": 800,
        "lr": 0.05,
    }
    defaults.update(params)
    return BiasedMF(device="cpu", **defaults).fit(data.users, data.items, data.ratings, N_USERS, N_ITEMS)


@pytest.fixture(scope="module")
def fitted(synthetic) -> BiasedMF:
    return _fit(synthetic)


def test_constructor_sets_no_learned_attributes():
    model = BiasedMF(n_factors=7, random_state=3)
    assert model.n_factors == 7 and model.random_state == 3
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict([0], [0])


def test_fit_returns_self_and_learns_underscore_attributes(synthetic):
    model = BiasedMF(n_factors=2, n_epochs=5, device="cpu")
    assert model.fit(synthetic.users, synthetic.items, synthetic.ratings, N_USERS, N_ITEMS) is model
    assert model.item_factors_.shape == (N_ITEMS, 2) and model.user_vectors_.shape == (N_USERS, 2)
    assert model.user_bias_.shape == (N_USERS,) and model.item_bias_.shape == (N_ITEMS,)
    assert abs(model.global_mean_ - float(synthetic.ratings.mean())) < 1e-5
    assert len(model.loss_history_) == 5


def test_training_fits_the_synthetic_matrix(synthetic, fitted):
    rmse = rating_metrics(fitted.predict(synthetic.users, synthetic.items), synthetic.ratings)["rmse"]
    baseline = float(np.sqrt(np.mean((synthetic.ratings - synthetic.ratings.mean()) ** 2)))
    assert fitted.loss_history_[-1] < fitted.loss_history_[0]
    assert rmse < 0.5 * baseline
    predictions = fitted.predict(synthetic.users, synthetic.items)
    assert predictions.min() >= 1.0 and predictions.max() <= 5.0


def test_same_seed_repeats_and_other_seed_differs(synthetic):
    a = _fit(synthetic, n_epochs=30, random_state=1)
    b = _fit(synthetic, n_epochs=30, random_state=1)
    c = _fit(synthetic, n_epochs=30, random_state=2)
    assert torch.equal(a.item_factors_, b.item_factors_)
    assert not torch.allclose(a.item_factors_, c.item_factors_)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("reg_factors", 0.05, 20.0), ("n_factors", 1, 6), ("reg_bias", 0.01, 50.0)],
)
def test_changing_one_hyperparameter_changes_the_result(synthetic, name, low, high):
    """Surprise-style: a test that can fail. More regularisation shrinks; more factors fit closer."""
    small, large = _fit(synthetic, n_epochs=300, **{name: low}), _fit(synthetic, n_epochs=300, **{name: high})
    train_rmse = [
        rating_metrics(m.predict(synthetic.users, synthetic.items), synthetic.ratings)["rmse"]
        for m in (small, large)
    ]
    assert abs(train_rmse[0] - train_rmse[1]) > 0.01
    if name == "reg_factors":
        assert large.item_factors_.norm() < 0.5 * small.item_factors_.norm()
        assert train_rmse[1] > train_rmse[0]
    elif name == "n_factors":
        assert train_rmse[1] < train_rmse[0]
    else:
        assert large.item_bias_.abs().mean() < small.item_bias_.abs().mean()


@pytest.mark.parametrize("implicit", [False, True])
def test_fold_in_of_a_trained_user_reproduces_training(synthetic, implicit):
    """Given the items, each user's training optimum is the fold-in ridge solution."""
    model = _fit(synthetic, implicit=implicit, n_epochs=1500, lr=0.03)
    for user in (0, 17, 42):
        mask = synthetic.users == user
        solution = model.fold_in(synthetic.items[mask], synthetic.ratings[mask])
        assert abs(float(solution.bias) - float(model.user_bias_[user])) < 0.02
        assert torch.allclose(solution.vector, model.user_vectors_[user], atol=0.02)


def test_fold_in_agrees_with_retraining_including_the_user(synthetic):
    """A user left out of training and folded in predicts close to a model retrained with them."""
    user = 5
    keep = synthetic.users != user
    without = Ratings(synthetic.users[keep], synthetic.items[keep], synthetic.ratings[keep])
    folded_model = _fit(without, n_epochs=1500, lr=0.03)
    retrained = _fit(synthetic, n_epochs=1500, lr=0.03)
    mask = ~keep
    solution = folded_model.fold_in(synthetic.items[mask], synthetic.ratings[mask])
    folded = (
        folded_model.global_mean_
        + folded_model.item_bias_
        + float(solution.bias)
        + folded_model.item_factors_ @ solution.vector
    )
    full = torch.as_tensor(retrained.predict(np.full(N_ITEMS, user), np.arange(N_ITEMS), clip=False))
    assert float((folded - full).abs().mean()) < 0.1
    assert float(torch.corrcoef(torch.stack([folded, full]))[0, 1]) > 0.95


def test_fold_in_contributions_sum_to_the_personal_score(fitted, synthetic):
    mask = synthetic.users == 3
    solution = fitted.fold_in(synthetic.items[mask], synthetic.ratings[mask])
    contributions = solution.contributions(fitted.item_factors_)  # (n_items, n_rated)
    personal = float(solution.bias) + fitted.item_factors_ @ solution.vector
    assert torch.allclose(contributions.sum(dim=1), personal, atol=1e-4)


def test_fold_in_with_no_ratings_is_the_average_user(fitted):
    solution = fitted.fold_in(np.array([], dtype=np.int64), np.array([], dtype=np.float32))
    assert float(solution.bias) == 0.0 and float(solution.vector.abs().sum()) == 0.0


def test_bias_only_baseline_has_no_factors(synthetic):
    model = _fit(synthetic, n_factors=0, implicit=False, reg_bias=5.0, reg_exponent=0.0, n_epochs=150)
    assert model.item_factors_.shape == (N_ITEMS, 0)
    assert np.allclose(model.predict([0, 0], [1, 1]), model.predict([0, 0], [1, 1]))


def test_ranking_metrics_on_a_hand_made_case():
    train = Ratings(np.array([0, 1]), np.array([0, 0]), np.array([5.0, 5.0], dtype=np.float32))
    test = Ratings(np.array([0, 0, 1]), np.array([1, 2, 3]), np.array([5.0, 2.0, 4.0], dtype=np.float32))
    scores = torch.tensor([[9.0, 3.0, 2.0, 1.0], [9.0, 1.0, 2.0, 3.0]])  # item 0 is seen by both: excluded
    metrics = ranking_metrics(scores, train, test, k=1)
    assert metrics["ranked_users"] == 2
    assert metrics["precision@1"] == 1.0 and metrics["recall@1"] == 1.0 and metrics["ndcg@1"] == 1.0
    metrics = ranking_metrics(-scores, train, test, k=1)  # worst-first: the relevant item is never on top
    assert metrics["precision@1"] == 0.0


def test_rating_metrics_clip_to_the_scale():
    assert rating_metrics(np.array([7.0, 0.0]), np.array([5.0, 1.0])) == {"rmse": 0.0, "mae": 0.0}


def test_puresvd_ranker_follows_co_occurrence(synthetic):
    ranker = PureSVD(n_factors=2)
    assert not [name for name in vars(ranker) if name.endswith("_")]
    assert ranker.fit(synthetic.users, synthetic.items, N_USERS, N_ITEMS) is ranker
    assert ranker.item_factors_.shape == (N_ITEMS, 2)
    # two blocks of users who watch disjoint halves of the catalogue: a new user who watched three
    # films of the first half gets the rest of the first half on top
    users = np.repeat(np.arange(20), 10)
    items = np.concatenate([np.arange(10) if u < 10 else np.arange(10, 20) for u in range(20)])
    block = PureSVD(n_factors=2).fit(users, items, 20, 20)
    rated = torch.zeros(1, 20)
    rated[0, [0, 1, 2]] = 1
    scores = block.score(rated)[0]
    assert set(scores.topk(10).indices.tolist()) == set(range(10))


def test_two_stage_scores_keep_the_best_candidates_ordered_by_rating():
    rating = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    implicit = torch.tensor([[0.1, 0.9, 0.8, 0.7, 0.6]])
    allowed = torch.tensor([[True, True, False, True, True]])
    scores = two_stage_scores(rating, implicit, allowed, n_candidates=2)
    # candidates: items 1 and 3 (item 2 not allowed); item 0 has the best rating but is no candidate
    assert torch.isinf(scores[0, [0, 2, 4]]).all()
    assert scores[0, 1] == 4.0 and scores[0, 3] == 2.0
