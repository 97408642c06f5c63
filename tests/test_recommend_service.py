"""Service tests on the committed artifact: contract, validation, fallbacks, explanations, threads, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.errors import InputError, InputTooLargeError, NotOnThisMachineError, UnknownIdError
from services.recommend import (
    MAX_K,
    MAX_RATINGS,
    MIN_RATINGS_TO_RECOMMEND,
    History,
    RecommendService,
    example_inputs,
    load_service,
    parse_ratings,
)
from services.recommend.explanations import SMALL_PERSONAL

SCI_FI = {50: 5, 172: 5, 181: 4}  # Star Wars, Empire Strikes Back, Return of the Jedi


@pytest.fixture(scope="module")
def service():
    return load_service()


@pytest.fixture(scope="module")
def service_without_history(service):
    """The same weights as on a machine without the MovieLens files."""
    return RecommendService(service._model, service._items, None, service._device)


def test_new_user_gets_fold_in_recommendations_with_explanations(service):
    result = service.recommend(SCI_FI, k=10)
    assert result["mode"] == "fold-in" and result["fallback"] is None
    recs = result["recommendations"]
    assert len(recs) == 10
    assert not {rec["item_id"] for rec in recs} & set(SCI_FI)
    assert all(rec["n_ratings"] >= MIN_RATINGS_TO_RECOMMEND for rec in recs)
    predicted = [rec["predicted_rating"] for rec in recs]
    assert predicted == sorted(predicted, reverse=True) and all(1 <= p <= 5 for p in predicted)
    assert all(rec["explanation"]["summary"] for rec in recs)
    assert all(b["item_id"] in SCI_FI and b["contribution"] > 0 for rec in recs for b in rec["because"])
    assert result["fold_in_ms"] < 50
    json.dumps(result)  # plain types only


def test_explanations_sum_to_the_personal_part_of_the_score(service):
    """The listed shares come from an exact decomposition: all shares add up to b_u + q_j · z_u."""
    model = service._model
    import torch

    items = torch.tensor([i - 1 for i in SCI_FI])
    ratings = torch.tensor([float(r) for r in SCI_FI.values()])
    solution = model.fold_in(items, ratings)
    contributions = solution.contributions(model.item_factors)
    personal = solution.bias + model.item_factors @ solution.vector
    assert torch.allclose(contributions.sum(dim=1), personal, atol=1e-4)


def _shown_parts(explanation: dict) -> list[float]:
    return [
        explanation["overall"],
        explanation["habit"],
        *(film["contribution"] for film in explanation["films"]),
        explanation["other_ratings"],
    ]


def test_explanations_never_cite_a_film_rated_three_or_lower_and_add_up(service):
    """Issue 32: across many random profiles no pick is explained by a film the viewer rated <= 3 stars,
    and the numbers shown (overall + habit + named films + other ratings) add up to the model's
    prediction, which is recomputed here from the weights, not read back from the service."""
    import numpy as np

    arrays = service._arrays
    popular = np.flatnonzero(arrays.counts >= 50) + 1  # films people know
    rng = np.random.default_rng(32)
    named = small = 0
    for _ in range(300):
        size = int(rng.integers(1, 25))
        ids = rng.choice(popular, size=size, replace=False)
        ratings = {int(i): float(rng.integers(1, 6)) for i in ids}
        result = service.recommend(ratings, k=10)
        items = np.array([i - 1 for i in ratings])
        solution = arrays.fold_in(items, np.array(list(ratings.values())))
        for rec in result["recommendations"]:
            explanation = rec["explanation"]
            assert all(ratings[film["item_id"]] > 3 for film in explanation["films"]), (ratings, rec)
            assert rec["because"] == explanation["films"]
            parts = _shown_parts(explanation)
            assert abs(sum(parts) - explanation["predicted"]) < 1e-9, parts
            j = rec["item_id"] - 1
            model = (
                arrays.global_mean
                + arrays.item_bias[j]
                + solution.bias
                + arrays.item_factors[j] @ solution.vector
            )
            assert abs(explanation["predicted"] - model) <= 0.005 + 1e-9
            assert rec["predicted_rating"] == pytest.approx(float(np.clip(model, 1, 5)), abs=1e-3)
            named += bool(explanation["films"])
            small += explanation["summary"] == SMALL_PERSONAL
    assert named > 100 and small > 100  # both kinds of explanation occur, so the checks above bite


def test_disliked_films_do_not_explain_the_titanic_profile(service):
    """The issue's example: Godfather 5, Toy Story 4, Fargo 5, Titanic 2 - Titanic explains nothing."""
    recs = service.recommend({127: 5, 1: 4, 100: 5, 313: 2}, k=5)["recommendations"]
    assert all(film["item_id"] != 313 for rec in recs for film in rec["because"])
    assert any(rec["explanation"]["summary"] == SMALL_PERSONAL for rec in recs)


def test_each_pick_gets_its_own_reasons(service):
    """Issue 16: reasons come from per-item contributions, not the largest rating every time."""
    recs = [
        rec
        for example in example_inputs()
        for rec in service.recommend(example["ratings"])["recommendations"]
    ]
    first_reasons = {rec["because"][0]["item_id"] for rec in recs if rec["because"]}
    assert len(first_reasons) >= 3


def test_reasons_add_up_to_the_taste_part_of_the_prediction(service):
    import numpy as np

    from services.recommend.explanations import taste_contributions

    arrays = service._arrays
    items = np.array([i - 1 for i in SCI_FI])
    solution = arrays.fold_in(items, np.array([float(r) for r in SCI_FI.values()]))
    shares = taste_contributions(solution, arrays.item_factors)  # (n_items, 3)
    np.testing.assert_allclose(shares.sum(axis=1), arrays.item_factors @ solution.vector, atol=1e-9)


def test_ratings_change_the_recommendations(service):
    horror_fan = {288: 5, 200: 5, 98: 5, 50: 1, 1: 1}  # Scream, The Shining, Silence of the Lambs
    family = example_inputs()[1]["ratings"]
    a = [rec["item_id"] for rec in service.recommend(horror_fan)["recommendations"]]
    b = [rec["item_id"] for rec in service.recommend(family)["recommendations"]]
    assert a != b


def test_genre_filter(service):
    recs = service.recommend(SCI_FI, k=5, genre="comedy")["recommendations"]
    assert recs and all("Comedy" in rec["genres"] for rec in recs)
    with pytest.raises(InputError, match="unknown genre"):
        service.recommend(SCI_FI, genre="Space Opera")


@pytest.mark.parametrize("bad", [{50: 0}, {50: 6}, {50: float("nan")}, {50: "five"}, {50: -1}])
def test_ratings_outside_one_to_five_are_input_errors(service, bad):
    with pytest.raises(InputError, match="1 to 5|1 and 5|1 to 5 stars"):
        service.recommend(bad)


@pytest.mark.parametrize("bad_id", ["abc", "1.5", 2.5, None, True, "9" * 40])
def test_non_numeric_ids_raise_unknown_id(service, bad_id):
    with pytest.raises(UnknownIdError):
        service.recommend_for_user(bad_id)
    with pytest.raises(UnknownIdError):
        service.similar_items(bad_id)
    with pytest.raises(UnknownIdError):
        service.recommend({bad_id: 4})


@pytest.mark.parametrize("user_id", [0, -3, 944, 10**12, "-7"])
def test_unknown_users_get_the_flagged_popularity_fallback(service, user_id):
    result = service.recommend_for_user(user_id, k=5)
    assert result["fallback"] == "popularity" and result["mode"] == "popularity"
    assert "not one of the 943" in result["reason"]
    counts = [rec["n_ratings"] for rec in result["recommendations"]]
    assert len(counts) == 5 and counts == sorted(counts, reverse=True)
    assert result["recommendations"][0]["title"] == "Star Wars (1977)"


def test_unknown_items_are_reported_and_no_ratings_falls_back(service):
    result = service.recommend({99999: 5, 0: 4})
    assert result["fallback"] == "popularity" and result["unknown_items"] == [0, 99999]
    mixed = service.recommend({99999: 5, **SCI_FI})
    assert mixed["fallback"] is None and mixed["unknown_items"] == [99999] and mixed["n_rated"] == 3
    empty = service.recommend({})
    assert empty["fallback"] == "popularity" and empty["reason"] == "no ratings were given"


def test_similar_items_by_cosine(service):
    result = service.similar_items(172, k=5)  # Empire Strikes Back
    titles = [rec["title"] for rec in result["similar"]]
    assert "Return of the Jedi (1983)" in titles or "Star Wars (1977)" in titles
    scores = [rec["score"] for rec in result["similar"]]
    assert scores == sorted(scores, reverse=True) and all(
        -1 <= rec["similarity"] <= 1 for rec in result["similar"]
    )
    assert 172 not in [rec["item_id"] for rec in result["similar"]]
    fallback = service.similar_items(5000)
    assert fallback["fallback"] == "popularity"


def test_more_like_star_wars_is_what_a_film_lover_expects(service):
    """Issue 32: raw cosine put Fierce Creatures, Meet John Doe and Chungking Express (17-59 co-raters)
    beside Star Wars; weighting by co-rating support keeps films many viewers compared."""
    result = service.similar_items(50, k=8)
    titles = [rec["title"] for rec in result["similar"]]
    assert {"Empire Strikes Back, The (1980)", "Return of the Jedi (1983)"} <= set(titles[:3])
    assert not {"Fierce Creatures (1997)", "Meet John Doe (1941)", "Chungking Express (1994)"} & set(titles)
    assert all(rec["support"] >= 100 for rec in result["similar"])


def test_limits(service):
    with pytest.raises(InputError):
        service.recommend(SCI_FI, k=0)
    with pytest.raises(InputError):
        service.recommend(SCI_FI, k=MAX_K + 1)
    with pytest.raises(InputTooLargeError):
        service.recommend({i: 3 for i in range(1, MAX_RATINGS + 2)})
    with pytest.raises(InputError, match="rated twice"):
        service.recommend([(50, 5), (50, 4)])


def test_parse_ratings():
    assert parse_ratings("50:5, 172:4.5,") == {50: 5.0, 172: 4.5}
    for bad in ("50", "50:x", "50:9"):
        with pytest.raises(InputError):
            parse_ratings(bad)
    with pytest.raises(UnknownIdError):
        parse_ratings("star wars:5")


def test_existing_user_without_local_data_uses_trained_vector(service_without_history):
    assert not service_without_history.has_history
    result = service_without_history.recommend_for_user(1, k=5)
    assert result["mode"] == "trained" and result["history"] == "unavailable"
    assert any("not available" in note for note in result["notes"])
    assert len(result["recommendations"]) == 5
    with pytest.raises(NotOnThisMachineError, match="may not be redistributed"):
        service_without_history.user_profile(1)


def test_existing_user_with_local_history(tmp_path):
    """A tiny fake history (not MovieLens data) exercises the existing-user path without the dataset."""
    import numpy as np

    base = load_service()
    items = {0: np.array([49, 171, 180]), 1: np.array([0, 287])}
    ratings = {0: np.array([5.0, 5.0, 4.0], dtype=np.float32), 1: np.array([3.0, 1.0], dtype=np.float32)}
    service = RecommendService(base._model, base._items, History(items, ratings), base._device)
    result = service.recommend_for_user(1, k=5)
    assert result["mode"] == "fold-in" and result["history"] == "local dataset" and result["n_rated"] == 3
    assert not {50, 172, 181} & {rec["item_id"] for rec in result["recommendations"]}
    timings = ("latency_ms", "stages_ms", "fold_in_ms")
    as_new_user = service.recommend(SCI_FI, k=5)
    assert {key: value for key, value in result.items() if key not in timings} == {
        **{key: value for key, value in as_new_user.items() if key not in timings},
        "user_id": 1,
        "history": "local dataset",
    }
    profile = service.user_profile(1)
    assert profile["top_rated"][0]["rating"] == 5.0 and profile["n_ratings"] == 3
    assert {row["genre"] for row in profile["genre_taste"]} >= {"Sci-Fi", "Action"}
    with pytest.raises(UnknownIdError):
        service.user_profile(944)


def test_item_map_and_catalogue(service):
    points = service.item_map()
    assert len(points) > 500 and {"x", "y", "genre", "title"} <= set(points[0])
    assert len(service.catalogue()) == 1682


def test_predict_batch_matches_single_calls(service):
    requests = [
        {"ratings": SCI_FI},
        {"user": 99999, "k": 3},
        {"ratings": {1: 5, 94: 4}, "genre": "Drama"},
        {"ratings": {50: 9}},
        {"user": 1, "k": 5},
    ]
    batch = service.predict_batch(requests)
    for request, result in zip(requests[:3] + requests[4:], batch[:3] + batch[4:], strict=True):
        single = service.predict(request)
        assert [r["item_id"] for r in single["recommendations"]] == [
            r["item_id"] for r in result["recommendations"]
        ]
    assert batch[3]["error"]["type"] == "InputError" and "1 to 5" in batch[3]["error"]["message"]
    with pytest.raises(InputError, match="exactly one"):
        service.predict({"user": 1, "ratings": SCI_FI})
    with pytest.raises(InputError, match="unexpected field"):
        service.predict({"user": 1, "similar": 5})


def test_results_carry_the_common_contract_fields(service):
    from services.base import RESULT_FIELDS

    personal = service.predict({"ratings": SCI_FI, "k": 5})
    fallback = service.predict({"user": 0, "k": 5})
    for result in (personal, fallback):
        assert set(RESULT_FIELDS) <= set(result)
        assert set(result["stages_ms"]) == {"preprocess", "forward", "postprocess"}
        assert result["label"] == result["recommendations"][0]["title"]
        assert [row["label"] for row in result["top_k"]] == [r["title"] for r in result["recommendations"]]
        assert [row["score"] for row in result["top_k"]] == [
            r["predicted_rating"] for r in result["recommendations"]
        ]
        top = result["recommendations"][0]["predicted_rating"]
        assert result["confidence"] == pytest.approx((top - 1) / 4, abs=1e-3)
    assert personal["low_confidence"] is False and fallback["low_confidence"] is True
    json.dumps(personal)
    similar = service.similar_items(50, k=3)
    # similar_items runs no stages, so it reports no stage times (services/base.py: a Report)
    assert set(RESULT_FIELDS) - {"stages_ms"} <= set(similar) and "stages_ms" not in similar
    assert similar["label"] == similar["similar"][0]["title"]


def test_info_reads_the_bundle_and_metrics(service):
    from models.recommend import MF_MOVIELENS_100K

    info = service.info()
    assert info["n_users"] == 943 and info["n_items"] == 1682 and isinstance(info["has_history"], bool)
    assert info["parameters"] == sum(
        int(t.numel()) for name, t in service._model.named_buffers() if name != "item_count"
    )
    assert info["features"]["n_factors"] == service._model.item_factors.shape[1]
    assert info["metrics"]["rmse"] == MF_MOVIELENS_100K.metrics()["rmse"]
    assert info["catalogue_scope"] == "MovieLens-100K: films up to 1998"


def test_load_service_builds_once(service):
    assert load_service() is service


def test_threads_get_the_serial_answers(service):
    inputs = [example["ratings"] for example in example_inputs()] * 4
    serial = [[r["item_id"] for r in service.recommend(x)["recommendations"]] for x in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(
            pool.map(lambda x: [r["item_id"] for r in service.recommend(x)["recommendations"]], inputs)
        )
    assert parallel == serial


def test_self_test_and_examples(service):
    examples = example_inputs()
    assert {e["name"] for e in examples} == {"sci_fi_fan", "family_comedy", "drama_lover"}
    report = service.self_test()
    assert report["output"].startswith("top picks:") and report["latency_ms"] >= 0
    # Issue 32: the Home card names films as their page does ("The Princess Bride", not "Princess Bride, The")
    assert ", The (" not in report["output"] and "The Princess Bride (1987)" in report["output"]


def test_service_cli_outputs_one_json_line_per_input(repo_root):
    command = [
        sys.executable,
        "-m",
        "services.recommend",
        "--rate",
        "50:5,172:5,181:4",
        "--rate",
        "50:9",
        "--user",
        "0",
        "--k",
        "3",
    ]
    completed = subprocess.run(
        command, cwd=repo_root, capture_output=True, text=True, timeout=120, check=True
    )
    lines = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    assert [line["input"] for line in lines] == ["user=0", "rate=50:5,172:5,181:4", "rate=50:9"]
    assert lines[0]["fallback"] == "popularity"
    assert len(lines[1]["recommendations"]) == 3 and lines[1]["recommendations"][0]["explanation"]["summary"]
    assert "error" in lines[2] and "1 to 5" in lines[2]["error"]["message"]


def test_service_ranking_is_the_evaluated_two_stage_ranking(service):
    """The top-N the page shows is the one `python -m models evaluate recommend` scores."""
    import torch

    from models.recommend import n_candidates, two_stage_scores

    model = service._model
    items = torch.tensor([i - 1 for i in SCI_FI])
    solution = model.fold_in(items, torch.tensor([float(r) for r in SCI_FI.values()]))
    rated = torch.zeros(1, service.n_items)
    rated[0, items] = 1
    allowed = ~rated.bool() & (model.item_count >= MIN_RATINGS_TO_RECOMMEND)[None]
    scores = two_stage_scores(
        model(solution.bias[None], solution.vector[None]),
        model.implicit_scores(rated),
        allowed,
        n_candidates(10),
    )
    expected = (scores[0].topk(10).indices + 1).tolist()
    assert [rec["item_id"] for rec in service.recommend(SCI_FI, k=10)["recommendations"]] == expected


def test_non_ascii_digits_are_an_unknown_id_not_a_crash(service):
    # Found by hypothesis: '¹'.isdigit() is True but int('¹') raises ValueError.
    for raw in ("¹", "٣", "²³"):
        with pytest.raises(UnknownIdError):
            service.recommend_for_user(raw, k=5)


def test_search_finds_titles_as_people_write_them(service):
    def titles(query, limit=5):
        return [m["title"] for m in service.search(query, limit=limit)["matches"]]

    assert titles("The Godfather")[0] == "Godfather, The (1972)"
    assert titles("godfather, the")[0] == "Godfather, The (1972)"
    assert titles("Star Wars") == ["Star Wars (1977)"]  # no fuzzy extras (issue 16: Dr. Strangelove)
    assert titles("se7en") == ["Seven (Se7en) (1995)"]
    assert titles("the city of lost children")[0].startswith("City of Lost Children, The")
    assert service.search("Star Wars")["matches"][0]["display_title"] == "Star Wars (1977)"
    nothing = service.search("Matrix")
    assert nothing["matches"] == [] and "films up to 1998" in nothing["notes"][0]
    assert service.search("   ")["matches"] == []
    assert len(titles("the", limit=150)) == 150
    with pytest.raises(InputError, match="limit"):
        service.search("the", limit=0)
    with pytest.raises(InputTooLargeError):
        service.search("x" * 500)
