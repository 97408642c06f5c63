"""Every task against the catalogue of bad inputs: a typed error or an honest answer, in bounded time."""

from __future__ import annotations

import time

import pytest

from services import nlp, recommend, speech, vision
from services.errors import InputError
from tests.reliability.inputs import audio_cases, id_cases, image_cases, text_cases

TIME_LIMIT_S = 10.0  # per input, on a loaded 2-core CI machine
TIMINGS: list[tuple[str, str, float, str]] = []


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    for module in (vision, speech, nlp, recommend):
        module.load_service()  # loading time is not part of any input's answer time
    yield
    rejected = [row for row in TIMINGS if row[3] == "error"]
    if rejected:
        task, name, seconds, _ = max(rejected, key=lambda row: row[2])
        print(
            f"\ncatalogue: {len(TIMINGS)} inputs, {len(rejected)} rejected with a typed error, 0 crashes; "
            f"slowest rejection {seconds * 1000:.0f} ms ({task}: {name})"
        )


def check(task: str, name: str, call, expectation: str) -> dict | None:
    started = time.perf_counter()
    try:
        result = call()
        outcome = "ok"
    except InputError as err:
        assert str(err).strip(), "an InputError must carry a message for the user"
        assert "Traceback" not in str(err)
        result, outcome = None, "error"
    elapsed = time.perf_counter() - started
    TIMINGS.append((task, name, elapsed, outcome))
    assert elapsed < TIME_LIMIT_S, f"{task} {name}: {elapsed:.1f} s"
    if expectation != "any":
        assert outcome == expectation, f"{task} {name}: expected {expectation}, got {outcome}: {result}"
    return result


@pytest.mark.parametrize("name", list(image_cases()))
def test_vision_catalogue(name):
    data, expectation = image_cases()[name]
    result = check("vision", name, lambda: vision.load_service().predict(data), expectation)
    if result is not None:
        assert result["label"] in [str(d) for d in range(10)] or result["label"] in range(10)
        assert 0.0 <= result["confidence"] <= 1.0


@pytest.mark.parametrize("name", list(audio_cases()))
def test_speech_catalogue(name):
    data, expectation = audio_cases()[name]
    result = check("speech", name, lambda: speech.load_service().predict(data), expectation)
    if result is not None:  # known words in order, or "not a word I know" for a sound it does not know
        vocabulary = speech.load_service().vocabulary()
        known = set(vocabulary["digits"]) | set(vocabulary["commands"])
        assert (result["label"] is None and result["reason"] == "not a word I know") or all(
            word.isdigit() or word in known for word in str(result["label"]).split()
        )
        assert 0.0 <= result["confidence"] <= 1.0


@pytest.mark.parametrize("name", list(text_cases()))
def test_language_catalogue(name):
    text, expectation = text_cases()[name]
    result = check("nlp", name, lambda: nlp.load_service().predict(text), expectation)
    if result is not None:
        assert result["label"] in ("positive", "negative")
        assert 0.5 <= result["confidence"] <= 1.0


@pytest.mark.parametrize("name", list(text_cases()))
def test_language_explanations_never_echo_raw_markup(name):
    text, expectation = text_cases()[name]
    result = check(
        "nlp", f"explain {name}", lambda: nlp.load_service().predict(text, explain=True), expectation
    )
    if result is not None and "<script>" in text:
        from pages.ui.language import attribution_markdown

        rendered = attribution_markdown(text, result["words"])
        assert "<script>" not in rendered


@pytest.mark.parametrize("name", list(id_cases()))
def test_recommend_user_ids(name):
    user_id = id_cases()[name]
    result = check(
        "recommend", f"user {name}", lambda: recommend.load_service().recommend_for_user(user_id, k=5), "any"
    )
    if result is not None:
        assert result.get("fallback") == "popularity", result
        assert len(result["recommendations"]) == 5


@pytest.mark.parametrize("name", list(id_cases()))
def test_recommend_item_ids(name):
    item_id = id_cases()[name]
    similar = check(
        "recommend", f"similar {name}", lambda: recommend.load_service().similar_items(item_id, k=5), "any"
    )
    if similar is not None:  # a well-formed but unknown id: the documented popularity fallback
        assert similar.get("fallback") == "popularity", similar
    result = check(
        "recommend", f"rate {name}", lambda: recommend.load_service().recommend({item_id: 5}, k=5), "any"
    )
    if result is not None:
        assert result.get("fallback") == "popularity", result


@pytest.mark.parametrize("rating", [0, 6, -1, float("nan"), "five", 1e9])
def test_recommend_rejects_ratings_outside_the_scale(rating):
    check(
        "recommend",
        f"rating {rating!r}",
        lambda: recommend.load_service().recommend({1: rating}, k=5),
        "error",
    )
