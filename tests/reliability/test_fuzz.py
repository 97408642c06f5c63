"""Property-based fuzzing: no byte string or text makes any service raise anything but InputError,
and each answer comes in bounded time. Examples are derandomized so CI runs are repeatable."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import nlp, recommend, speech, vision
from services.errors import InputError

# 8 properties x 1,000 inputs run for minutes on two cores: `make test` runs them, `make test-fast` not.
pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=1000,
    deadline=5000,  # ms per input
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Real magic numbers in front of random tails reach deep into the decoders, not just their first check.
MAGIC = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"RIFF\x24\x00\x00\x00WAVEfmt ",
    b"fLaC",
    b"OggS",
    b"ID3\x04",
    b"\xff\xfb",
    b"\x00\x00\x00\x20ftypM4A ",
]
upload_bytes = st.one_of(
    st.binary(max_size=2048),
    st.tuples(st.sampled_from(MAGIC), st.binary(max_size=2048)).map(lambda parts: parts[0] + parts[1]),
)
any_text = st.text(max_size=400)


def answers_or_rejects(call):
    try:
        return call()
    except InputError as err:
        assert str(err).strip()
        return None


@pytest.fixture(scope="module", autouse=True)
def loaded_services():
    for module in (vision, speech, nlp, recommend):
        module.load_service()


@FUZZ
@given(data=upload_bytes)
def test_fuzz_image_upload(data):
    answers_or_rejects(lambda: vision.load_service().predict(data))


@FUZZ
@given(data=upload_bytes)
def test_fuzz_audio_upload(data):
    answers_or_rejects(lambda: speech.load_service().predict(data))


@FUZZ
@given(data=upload_bytes, name=st.sampled_from(["texts.csv", "texts.txt", "x.tsv", "noext"]))
def test_fuzz_text_batch_upload(data, name):
    answers_or_rejects(lambda: nlp.read_batch_file(data, name))


@FUZZ
@given(text=any_text)
def test_fuzz_sentiment_text(text):
    result = answers_or_rejects(lambda: nlp.load_service().predict(text))
    if result is not None:
        assert result["label"] in ("positive", "negative")


@FUZZ
@given(text_a=any_text, text_b=any_text)
def test_fuzz_similarity_texts(text_a, text_b):
    result = answers_or_rejects(lambda: nlp.load_service().similarity(text_a, text_b))
    if result is not None:
        assert -1.0001 <= result["similarity"] <= 1.0001


@FUZZ
@given(text=any_text, n=st.integers(min_value=-3, max_value=50))
def test_fuzz_summary_texts(text, n):
    answers_or_rejects(lambda: nlp.load_service().summarize(text, n))


@FUZZ
@given(text=any_text)
def test_fuzz_rating_strings(text):
    answers_or_rejects(lambda: recommend.load_service().recommend(text, k=5))


@FUZZ
@given(user=st.one_of(st.integers(), st.text(max_size=30), st.floats(), st.none()))
def test_fuzz_user_ids(user):
    answers_or_rejects(lambda: recommend.load_service().recommend_for_user(user, k=5))
