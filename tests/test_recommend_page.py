"""AppTest of pages/4_Recommendation.py: fresh-user flow, example profiles, bad input, existing users."""

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


def test_page_renders_and_asks_for_ratings(app):
    assert "Recommendation" in app.title[0].value
    assert "Pick and rate at least one movie" in _texts(app)
    assert "Map of the item space" in _texts(app) and "More like this" in _texts(app)


def test_rating_three_movies_shows_explained_recommendations(app):
    app.multiselect(key="rec_picked").set_value([50, 172, 181]).run()
    assert not app.exception
    assert len(app.slider) >= 4  # k plus one per rated movie
    text = _texts(app)
    assert "Recommended for you" in text and "Because you rated" in text
    assert any(
        t in text for t in ("*Star Wars", "*Empire Strikes", "*Return of the Jedi")
    )  # names a rated film
    app.selectbox(key="rec_genre").set_value("Comedy").run()
    assert not app.exception and "Recommended for you" in _texts(app)


def test_example_profile_button(app):
    app.button[0].click().run()
    assert not app.exception
    assert app.multiselect(key="rec_picked").value
    assert "Because you rated" in _texts(app)


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
    assert "Recommended for you" in text
    assert "Genre taste" in str(app) or "may not be redistributed" in text or "User 1:" in text
