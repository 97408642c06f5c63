"""AppTest of pages/4_Recommendation.py: search and explicit ratings, example profiles, bad input,
shared links, existing users."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "4_Recommendation.py")


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    return at


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def _search(at: AppTest, text: str) -> AppTest:
    at.text_input(key="rec_query").input(text).run()
    assert not at.exception
    return at


def test_page_renders_asks_for_ratings_and_states_the_catalogue_scope(app):
    assert "Recommendation" in app.title[0].value
    text = _texts(app)
    assert "Search for a film you have seen and click a rating" in text
    assert "MovieLens-100K: films up to 1998" in text
    assert [tab.label for tab in app.tabs] == ["Recommended for you", "More like this", "Map of the films"]


def test_search_adds_nothing_until_a_rating_is_clicked(app):
    """Issue 16: Enter in the search never adds a film, and no film gets a silent 4★."""
    _search(app, "Star Wars")
    assert "Star Wars (1977)" in app.segmented_control(key="rec_new_50").label
    assert len(app.segmented_control) == 1  # one exact match; Dr. Strangelove is not offered
    assert app.session_state["rec_ratings"] == {}
    assert "Recommended for you" not in [s.value for s in app.subheader]
    assert "how viewers rate it" not in _texts(app)
    stars = app.segmented_control(key="rec_new_50")
    assert stars.value is None  # no default rating
    stars.set_value(5).run()
    assert not app.exception
    assert app.session_state["rec_ratings"] == {50: 5}
    assert app.text_input(key="rec_query").value == ""  # the search is cleared for the next film
    assert app.segmented_control(key="rec_rate_50").value == 5


def test_the_godfather_is_found_and_matrix_says_the_catalogue_ends_in_1998(app):
    _search(app, "The Godfather")
    assert "The Godfather (1972)" in app.segmented_control(key="rec_new_127").label
    _search(app, "Matrix")
    text = _texts(app)
    assert "No title matches 'Matrix'" in text and "films up to 1998" in text


def test_rating_three_films_shows_picks_with_their_own_reasons(app):
    for query, item_id, stars in (
        ("Star Wars", 50, 5),
        ("Empire Strikes Back", 172, 5),
        ("Sense and Sens", 275, 4),
    ):
        _search(app, query)
        app.segmented_control(key=f"rec_new_{item_id}").set_value(stars).run()
        assert not app.exception
    assert app.session_state["rec_ratings"] == {50: 5, 172: 5, 275: 4}
    text = _texts(app)
    assert "how viewers rate it" in text and "predicted" in text
    app.selectbox(key="rec_genre").set_value("Comedy").run()
    assert not app.exception and "how viewers rate it" in _texts(app)


def test_clicking_the_chosen_rating_again_removes_the_film(app):
    app.button[0].click().run()  # an example profile
    rated = dict(app.session_state["rec_ratings"])
    first = next(iter(rated))
    app.segmented_control(key=f"rec_rate_{first}").set_value(None).run()
    assert not app.exception
    assert (
        first not in app.session_state["rec_ratings"]
        and len(app.session_state["rec_ratings"]) == len(rated) - 1
    )


def test_example_profile_button(app):
    app.button[0].click().run()
    assert not app.exception
    assert app.session_state["rec_ratings"]
    assert "how viewers rate it" in _texts(app)


def test_a_shared_link_reopens_the_same_ratings():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["ratings"] = "50:5,172:4"
    at.run()
    assert not at.exception
    assert at.session_state["rec_ratings"] == {50: 5, 172: 4}
    assert "how viewers rate it" in _texts(at)


def test_bad_pasted_rating_shows_a_warning_not_a_traceback(app):
    app.text_input(key="rec_pasted").input("50:9").run()
    assert not app.exception
    assert any("1 to 5" in w.value for w in app.warning)


def test_unknown_pasted_movie_falls_back_to_popular(app):
    app.text_input(key="rec_pasted").input("99999:5").run()
    assert not app.exception
    text = _texts(app)
    assert "Popular films shown instead" in text and "99999" in text


def test_existing_user_mode(app):
    app.radio(key="rec_mode").set_value("Be an existing MovieLens user").run()
    assert not app.exception
    text = _texts(app)
    assert "predicted" in text
    assert "Genre taste" in str(app) or "may not be redistributed" in text or "User 1:" in text


def test_about_box_puts_the_figures_beside_their_baselines(app):
    import json

    metrics = json.loads((Path(PAGE).parents[1] / "models/recommend/metrics.json").read_text())
    about = _texts(app)
    for key in (
        "rmse",
        "ndcg@10",
        "baseline_bias_rmse",
        "baseline_global_mean_rmse",
        "reference_popularity_ndcg@10",
    ):
        assert f"{metrics[key]:.3f}" in about, key  # read from metrics.json, not typed
    assert "No test outside MovieLens-100K" in about


def test_a_film_rated_two_stars_never_explains_a_pick():
    """Issue 32: Godfather 5, Toy Story 4, Fargo 5, Titanic 2 - no pick is 'because you rated Titanic'."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["ratings"] = "127:5,1:4,100:5,313:2"
    at.run()
    assert not at.exception
    text = _texts(at)
    assert "how viewers rate it" in text and "Titanic" not in text
    assert "Popular and highly rated overall; your ratings move it little" in text


def test_more_like_this_starts_on_the_favourite_and_shows_support():
    """Issue 32: the tab opens on the viewer's top-rated film (not Star Wars), with how many rated both."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["ratings"] = "127:5,1:4,100:4,313:2"
    at.run()
    assert not at.exception
    assert at.selectbox(key="rec_similar").value == 127  # The Godfather, rated 5
    table = at.dataframe[-1].value
    assert "support" in table.columns and (table["support"] >= 50).all()
    assert "GoodFellas (1990)" in set(table["display_title"])


def test_more_like_this_asks_when_nothing_is_rated(app):
    assert app.selectbox(key="rec_similar").value is None
    assert "Choose a film, or rate a few films" in _texts(app)
