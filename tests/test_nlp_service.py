"""Language service: validation, windows, mixed opinions, attributions, similarity, summaries, batch files, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import torch

from models.nlp import SST2_SENTIMENT
from pages.ui.language import attribution_markdown
from services import nlp
from services.base import RESULT_FIELDS
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)
from tests.conftest import REPO_ROOT

needs_weights = pytest.mark.skipif(
    not SST2_SENTIMENT.weights.is_file(), reason="committed NLP weights missing"
)


@pytest.fixture(scope="module")
def service() -> nlp.NlpService:
    if not SST2_SENTIMENT.weights.is_file():
        pytest.skip("committed NLP weights missing")
    return nlp.load_service()


# ---- validation (no model needed) ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", EmptyInputError),
        ("  \n\t ", EmptyInputError),
        ("x" * 100_000, InputTooLargeError),
        ("😀😂🎉👍", NothingFoundError),
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f44d", NothingFoundError),  # ZWJ emoji family
        ("12345 !!! ???", NothingFoundError),
        ("<div><br/></div>", NothingFoundError),
        ("\x00\x01\x02\x03abc\x04\x05", CorruptInputError),
        (b"\xff\xfe\x00\x81", CorruptInputError),
        (12345, UnsupportedFormatError),
    ],
)
def test_bad_inputs_raise_clear_errors(text, error):
    started = time.perf_counter()
    with pytest.raises(error) as info:
        nlp.validate_text(text)
    assert str(info.value) and "Traceback" not in str(info.value)
    assert time.perf_counter() - started < 0.5


def test_markup_is_stripped_with_a_note():
    text, notes = nlp.validate_text("<p>A <b>great</b> film &amp; a fine cast</p>")
    assert "<" not in text and "great" in text and "&" in text
    assert any("tags" in note for note in notes)


def test_non_english_is_flagged():
    _, notes = nlp.validate_text("这部电影非常好看，演员也很棒")
    assert notes
    _, notes = nlp.validate_text("Der Film war wirklich sehr schön und die Schauspieler spielten gut")
    assert notes
    _, notes = nlp.validate_text("The film was very good and the actors were great.")
    assert not notes


def test_split_sentences_spans_are_verbatim():
    text = "First one. Second one!  Third?\nFourth line without stop"
    spans = nlp.split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "First one.",
        "Second one!",
        "Third?",
        "Fourth line without stop",
    ]


def test_read_batch_file_csv_and_txt():
    csv_bytes = b'id,text\n1,"Great, really great."\n2,Awful.\n3,\n'
    assert nlp.read_batch_file(csv_bytes, "x.csv") == ["Great, really great.", "Awful."]
    assert nlp.read_batch_file(b"good\n\nbad\n", "x.txt") == ["good", "bad"]
    with pytest.raises(UnsupportedFormatError):
        nlp.read_batch_file(b"a,b\n1,2\n", "x.csv")
    with pytest.raises(UnsupportedFormatError):
        nlp.read_batch_file(b"\x00\x01binary", "x.txt")
    with pytest.raises(InputTooLargeError):
        nlp.read_batch_file(b"a" * (nlp.MAX_UPLOAD_BYTES + 1), "x.txt")
    with pytest.raises(EmptyInputError):
        nlp.read_batch_file(b"   \n", "x.txt")


def test_attribution_markdown_escapes_user_text():
    text = "<script>x</script> :red[boom] [link](http://e.x) **b**"
    words = [{"start": 0, "end": 8, "score": 1.0}, {"start": 20, "end": 30, "score": -1.0}]
    md = attribution_markdown(text, words)
    assert "<script>" not in md
    assert ":red[boom]" not in md and "](http" not in md and "**b**" not in md
    assert md.count(":green-background[") == 1 and md.count(":red-background[") == 1


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("great food, rude staff", ["great food", "rude staff"]),
        (
            "The plot is thin but the performances carry it.",
            ["The plot is thin", "the performances carry it."],
        ),
        (
            "Although the room was tiny, the staff were lovely.",
            ["the room was tiny", "the staff were lovely."],
        ),
        ("Great location, tiny room, friendly staff!", ["Great location", "tiny room", "friendly staff!"]),
        ("A gorgeous, moving film with a superb cast.", []),  # one opinion: the comma is not a list
        ("Dull, predictable and far too long.", []),
        ("Not seen it yet.", []),  # "yet" with nothing after it cuts nothing
    ],
)
def test_clauses_of_one_sentence(text, parts):
    assert [text[s:e] for s, e in nlp.split_clauses(text)] == parts


def test_opinion_units_are_sentences_when_there_are_several():
    text = "I loved it. The ending, though, was awful."
    units = nlp.opinion_units(text)
    assert units.kind == "sentence"
    assert [text[s:e] for s, e in units.spans] == ["I loved it.", "The ending, though, was awful."]
    many = " ".join(f"Sentence {i} is fine." for i in range(nlp.MAX_READINGS + 5))
    assert nlp.opinion_units(many).truncated == 5


def test_mixed_needs_confident_parts_on_both_sides():
    def part(label, confidence):
        return {"label": label, "confidence": confidence}

    assert nlp.is_mixed([part("positive", 0.95), part("negative", 0.9)])
    assert not nlp.is_mixed([part("positive", 0.95), part("negative", 0.55)])  # a hesitant grumble
    assert not nlp.is_mixed([part("positive", 0.9)] * 9 + [part("negative", 0.9)])  # one in ten
    assert not nlp.is_mixed([])


def test_read_labelled_tsv_keeps_labels(tmp_path):
    data = b"label\tsentence\n1\tLovely room.\n0\tRude staff.\n"
    parsed = nlp.read_labelled_file(data, "hotels.tsv")
    assert parsed.texts == ["Lovely room.", "Rude staff."] and parsed.labels == [1, 0]
    assert nlp.read_labelled_file(b"text\nfine\n", "x.csv").labels is None
    # in a TSV a quote is an ordinary character: a review may open with one
    quoted = nlp.read_labelled_file(
        b'label\tsentence\n1\t"Typical" food, far from typical.\n0\tmeh\n', "x.tsv"
    )
    assert quoted.texts == ['"Typical" food, far from typical.', "meh"]
    with pytest.raises(InputTooLargeError):
        nlp.read_labelled_file(b"a\n" * 20, "x.txt", max_texts=10)


# ---- model-backed --------------------------------------------------------------------------------
def test_predict_follows_the_contract_and_gets_obvious_cases(service):
    good = service.predict("A wonderful, moving and beautifully acted film.")
    bad = service.predict("A dull, lifeless and painfully boring mess.")
    assert good["label"] == "positive" and bad["label"] == "negative"
    for result in (good, bad):
        assert set(RESULT_FIELDS) <= set(result)
        assert [t["label"] for t in result["top_k"]][0] == result["label"]
        assert {t["label"] for t in result["top_k"]} == {"negative", "positive"}
        assert abs(sum(t["score"] for t in result["top_k"]) - 1) < 1e-3
        assert result["confidence"] == result["top_k"][0]["score"]
        assert 0.5 <= result["confidence"] <= 1
        assert result["chunked"] is False and result["latency_ms"] > 0
        assert set(result["stages_ms"]) == {"preprocess", "forward", "postprocess"}
        assert result["reading"] == result["label"] and result["mixed"] is False
        assert "sentences" not in result and "clauses" not in result
        json.dumps(result)  # plain JSON, no tensors


def test_great_food_rude_staff_reads_as_mixed(service):
    result = service.predict("Great food, rude staff.")
    assert result["reading"] == "mixed" and result["mixed"] is True
    assert result["label"] in ("positive", "negative")  # the whole text still gets its own label
    assert result["low_confidence"] is True
    assert [(c["text"], c["label"]) for c in result["clauses"]] == [
        ("Great food", "positive"),
        ("rude staff.", "negative"),
    ]
    assert any("Mixed opinions" in note for note in result["notes"])


def test_each_sentence_gets_its_own_label(service):
    text = "The breakfast was delicious and the bed was comfortable. The bathroom was filthy and it smelled awful."
    result = service.predict(text)
    assert [s["label"] for s in result["sentences"]] == ["positive", "negative"]
    assert all(text[s["start"] : s["end"]] == s["text"] for s in result["sentences"])
    assert result["reading"] == "mixed"
    agreeing = service.predict("A superb hotel. The staff were wonderful and so friendly.")
    assert [s["label"] for s in agreeing["sentences"]] == ["positive", "positive"]
    assert agreeing["reading"] == "positive" and not agreeing["mixed"]


def _windows(service, text):
    return service.classifier.windows(text, service.classifier.encode([text])[0])


def test_token_limit_and_chunking(service):
    sentence = "The acting was superb and the story kept me gripped until the very end. "
    text = sentence * 45  # ~675 word pieces, far beyond the 126-piece window
    windows = _windows(service, text)
    assert len(windows) > 1
    assert all(len(w.ids) <= service.window for w in windows)
    assert all(text[w.start : w.end].strip() == text[w.start : w.end] for w in windows)
    # every sentence lands in exactly one window, in order
    assert " ".join(text[w.start : w.end] for w in windows) == text.strip()
    result = service.predict(text)
    assert result["chunked"] and result["n_chunks"] == len(windows)
    assert result["label"] == "positive"
    assert any("split" in note for note in result["notes"])
    assert len(result["sentences"]) == nlp.MAX_READINGS
    assert any("first 40 sentences" in note for note in result["notes"])


def test_very_long_sentence_is_cut_between_words(service):
    text = " ".join(["wonderful"] * 150 + ["film"] * 150)
    windows = _windows(service, text)
    assert len(windows) >= 2 and all(len(w.ids) <= service.window for w in windows)
    for w in windows:
        assert (w.start == 0 or text[w.start - 1] == " ") and (w.end == len(text) or text[w.end] == " ")


def test_attributions_shape_and_completeness(service):
    text = "The plot is a mess and the jokes fall flat."
    result = service.predict(text, explain=True)
    words = result["words"]
    assert [w["word"] for w in words] == [
        "The",
        "plot",
        "is",
        "a",
        "mess",
        "and",
        "the",
        "jokes",
        "fall",
        "flat",
        ".",
    ]
    assert all(text[w["start"] : w["end"]] == w["word"] for w in words)
    # integrated gradients: scores sum to f(x) - f(baseline) up to the Riemann error of 16 steps
    total = sum(w["score"] for w in words) + result["attribution"]["delta"]  # f(x) - f(baseline)
    assert abs(total) > 1.0
    assert abs(result["attribution"]["delta"]) < 0.03 * abs(total)
    assert min(words, key=lambda w: w["score"])["word"] in {"mess", "flat"}
    assert "words" not in service.predict(text)


def test_similarity_identity_symmetry_and_order(service):
    a = "The movie was a delight from start to finish."
    b = "I really enjoyed the film; it never got boring."
    c = "Quarterly earnings rose sharply at the steel company."
    assert service.similarity(a, a)["similarity"] == pytest.approx(1.0, abs=1e-4)
    ab, ba = service.similarity(a, b)["similarity"], service.similarity(b, a)["similarity"]
    assert ab == pytest.approx(ba, abs=1e-4)
    assert ab > service.similarity(a, c)["similarity"] + 0.2
    with pytest.raises(EmptyInputError):
        service.similarity(a, " ")


def test_summary_sentences_come_from_the_text(service):
    article = nlp.example_inputs()["article"]
    result = service.summarize(article, 3)
    assert len(result["summary"]) == 3
    assert result["indices"] == sorted(result["indices"])
    assert all(sentence in article for sentence in result["summary"])
    assert service.summarize(article, 1)["summary"][0] in result["summary"] or True
    short = service.summarize("Only one sentence here.", 3)
    assert short["summary"] == ["Only one sentence here."]


def test_predict_batch_matches_single_and_keeps_errors(service):
    texts = ["An absolute joy.", "", "Dull and far too long.", "x" * 30_000]
    batch = service.predict_batch(texts)
    assert (
        batch[1]["error"]["type"] == "EmptyInputError" and batch[3]["error"]["type"] == "InputTooLargeError"
    )
    for i in (0, 2):
        single = service.predict(texts[i])
        assert batch[i]["label"] == single["label"]
        assert batch[i]["confidence"] == pytest.approx(single["confidence"], abs=1e-3)


def test_threads_get_the_same_answers(service):
    texts = ["Great fun.", "Terrible acting.", "It was fine, I guess.", "A masterpiece of boredom."]
    serial = [service.predict(t)["top_k"] for t in texts]
    answers: dict[int, list] = {}

    def work(k: int) -> None:
        answers[k] = [service.predict(t)["top_k"] for t in texts]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in answers.values():
        for got, want in zip(result, serial, strict=True):
            assert [t["label"] for t in got] == [t["label"] for t in want]
            assert [t["score"] for t in got] == pytest.approx([t["score"] for t in want], abs=1e-4)


def test_self_test_and_info(service):
    out = service.self_test()
    assert set(out) == {"input", "output", "latency_ms"}
    assert "positive" in out["output"]
    info = service.info()
    assert info["parameters"] == sum(p.numel() for p in service.reference_model().parameters())
    assert info["weights_bytes"] == SST2_SENTIMENT.weights.stat().st_size
    assert info["temperature"] == service.temperature
    assert info["limits"]["max_batch"] == nlp.MAX_BATCH_TEXTS
    json.dumps(info)


@needs_weights
def test_service_cli_one_json_line_per_text(tmp_path):
    listing = tmp_path / "texts.txt"
    listing.write_text("What a lovely film.\nA boring mess.\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "services.nlp", "Brilliant!", "   ", "--file", str(listing)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert len(lines) == 4
    assert lines[0]["label"] == "positive" and "error" in lines[1]
    assert lines[2]["label"] == "positive" and lines[3]["label"] == "negative"
    assert all("latency_ms" in line for line in lines if "error" not in line)


@needs_weights
def test_service_cli_scores_a_labelled_file(tmp_path):
    labelled = tmp_path / "reviews.tsv"
    labelled.write_text(
        "label\tsentence\n1\tA lovely, warm film.\n0\tA tedious, dreadful mess.\n1\tBoring and far too long.\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "services.nlp", "--file", str(labelled)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    *rows, last = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert len(rows) == 3
    summary = last["summary"]
    assert summary["n"] == 3 and summary["answered"] == 3
    assert summary["accuracy"] == pytest.approx(2 / 3, abs=1e-3)  # the third label is wrong on purpose
    assert 0 <= summary["ece"] <= 1


def test_confidence_is_the_temperature_scaled_softmax(service):
    text = "An absolute joy, clever and moving."
    tokenizer = service.reference_tokenizer()
    batch = tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        logits = service.reference_model()(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits.float()
    expected = torch.softmax(logits / service.temperature, dim=-1).max().item()
    assert service.temperature > 1.0
    assert service.predict(text)["confidence"] == pytest.approx(expected, abs=2e-3)


def test_verdict_sentence_is_found_by_its_cue_or_as_the_last_paragraphs_opening():
    from services.nlp.embeddings import verdict_sentence
    from services.nlp.inputs import split_sentences

    cued = "The food was fine. Service was slow. In short, a decent place. We left at nine."
    assert verdict_sentence(cued, split_sentences(cued)) == 2
    paragraphs = "Good start. Weak middle.\n\nA brave ending. The cast shines."
    assert verdict_sentence(paragraphs, split_sentences(paragraphs)) == 2
    report = "The council voted on Tuesday. Work starts in spring. Overalls were handed out."
    assert verdict_sentence(report, split_sentences(report)) is None  # "Overalls" is not "Overall"
