"""Multi-domain sentiment: data roles, validation carving, per-domain scores, the card's tables.

The slow tests at the end measure the committed weights on every test-only set found in
../shared/data and skip cleanly when the data is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.nlp import SST2_SENTIMENT, load_sentiment_model, load_tokenizer
from models.nlp.domains import (
    MIXED_SOURCES,
    TEST_ONLY_SETS,
    load_multi_domain,
    normalise,
    read_label_sentence_tsv,
)
from tests.conftest import SHARED_DATA, dataset_dir

POSITIVE = ["great food", "the staff were lovely", "a spotless room", "works perfectly", "i loved it"]
NEGATIVE = ["rude staff", "the room was filthy", "it broke in a week", "cold and bland food", "i hated it"]


def _write_label_tsv(path: Path, rows: list[tuple[int, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("label\tsentence\n" + "".join(f"{y}\t{t}\n" for y, t in rows), encoding="utf-8")


@pytest.fixture()
def tiny_root(tmp_path) -> Path:
    """A data root shaped like ../shared/data with a few rows in every train and test-only file."""
    rows = [(1, t) for t in POSITIVE] + [(0, t) for t in NEGATIVE]
    sst2 = tmp_path / "sst2"
    sst2.mkdir()
    body = "".join(f"{t} a film\t{y}\n" for y, t in rows)
    (sst2 / "train.tsv").write_text("sentence\tlabel\n" + body * 4, encoding="utf-8")
    dev_body = "".join(f"{t} the movie\t{y}\n" for y, t in rows)
    (sst2 / "dev.tsv").write_text("sentence\tlabel\n" + dev_body, encoding="utf-8")
    for source in MIXED_SOURCES:
        for name in source.files + source.validation_files:
            _write_label_tsv(
                tmp_path / name, [(y, f"{t} ({Path(name).stem} {i})") for i, (y, t) in enumerate(rows)]
            )
    for test_set in TEST_ONLY_SETS:
        for name in test_set.files:
            if not name.startswith("sst2/"):
                _write_label_tsv(tmp_path / name, [(y, f"{t} test") for y, t in rows])
    # one training sentence that also sits in a test-only file must be dropped from training
    _write_label_tsv(
        tmp_path / "uci_sentiment_sentences/yelp.tsv",
        [(1, "great food test"), *[(y, f"{t} yelp") for y, t in rows]],
    )
    return tmp_path


def test_validation_is_carved_from_train_sources_and_test_rows_are_dropped(tiny_root):
    splits = load_multi_domain(tiny_root, sst2_validation_rows=8, seed=0)
    assert set(splits.train) == {"sst2", *(s.key for s in MIXED_SOURCES)}
    assert len(splits.validation["sst2"]) == 8
    test_texts = {normalise(t) for ts in TEST_ONLY_SETS for t in ts.load(tiny_root).texts}
    for part in [*splits.train.values(), *splits.validation.values()]:
        assert not {normalise(t) for t in part.texts} & test_texts
    assert splits.dropped_as_test_overlap["uci_reviews"] == 1
    # a row goes to train or to validation, never both (the SST-2 fixture repeats rows, as SST-2 does)
    for key in splits.train.keys() - {"sst2"}:
        assert not set(splits.train[key].texts) & set(splits.validation[key].texts)
    # tsa_md validates on its own dev file as well as on nothing carved (share 0)
    assert any("(dev" in t for t in splits.validation["tsa_md"].texts)


def test_test_only_sets_are_never_train_sources():
    train_files = {f for s in MIXED_SOURCES for f in s.files + s.validation_files} | {"sst2/train.tsv"}
    test_files = {f for t in TEST_ONLY_SETS for f in t.files}
    assert not train_files & test_files
    assert all(not f.startswith(("opener", "finegrained", "airline", "tweeteval")) for f in train_files)
    assert not any(f.endswith("_test.tsv") for f in train_files)


def test_score_test_sets_reports_each_present_set(tiny_root):
    from models.nlp.evaluate import score_test_sets

    model = load_sentiment_model(SST2_SENTIMENT, torch.device("cpu"))
    (tiny_root / "tweeteval_sentiment" / "test.tsv").unlink()  # an absent set is left out, not an error
    scores = score_test_sets(model, load_tokenizer(), tiny_root, temperature=2.0)
    assert set(scores) == {t.key for t in TEST_ONLY_SETS} - {"tweeteval_sentiment_test"}
    hotels = scores["opener_en_hotels"]
    assert hotels["n"] == 10 and 0 <= hotels["ece"] <= 1
    assert sum(map(sum, hotels["confusion_matrix"])) == 10
    (negatives_right, negatives_read_positive), (positives_read_negative, positives_right) = hotels[
        "confusion_matrix"
    ]
    assert hotels["negatives_read_positive_rate"] == pytest.approx(
        negatives_read_positive / max(1, negatives_right + negatives_read_positive), abs=1e-4
    )
    assert hotels["positives_read_negative_rate"] == pytest.approx(
        positives_read_negative / max(1, positives_read_negative + positives_right), abs=1e-4
    )
    assert scores["finegrained_product_reviews"]["n"] == 50  # five files read together


# ---- the committed weights on data they never saw (slow; need ../shared/data) ---------------------
# Regression floors about one point under what the shipped weights measure (metrics.json, MODEL_CARD);
# issue 29's targets (0.905, 0.95, 0.88, 0.92, 0.88, 0.75, 0.75) are mostly not reached, see the card.
FLOORS = {
    "sst2_dev": 0.885,
    "opener_en_hotels": 0.93,
    "finegrained_product_reviews": 0.825,
    "airline_tweets": 0.83,
    "dynasent_r1_test": 0.735,
    "dynasent_r2_test": 0.71,
    "tweeteval_sentiment_test": 0.81,
}
ECE_CEILING = 0.2  # the calibration error of every test-only set at the shipped temperature (R2: 0.16)


@pytest.fixture(scope="module")
def committed_model():
    return load_sentiment_model(SST2_SENTIMENT, torch.device("cpu")), load_tokenizer()


@pytest.mark.slow
@pytest.mark.parametrize("key", list(FLOORS))
def test_committed_accuracy_per_domain_matches_metrics(key, committed_model):
    from models.nlp.scoring import evaluate_model

    test_set = next(t for t in TEST_ONLY_SETS if t.key == key)
    dataset_dir(test_set.files[0].split("/")[0], test_set.files[0].split("/", 1)[1])
    if not test_set.available(SHARED_DATA):
        pytest.skip(f"{key} not found under {SHARED_DATA}")
    data = test_set.load(SHARED_DATA)
    model, tokenizer = committed_model
    accuracy = evaluate_model(model, tokenizer, data.texts, data.labels)["accuracy"]
    assert accuracy >= FLOORS[key]
    committed = json.loads((SST2_SENTIMENT.weights.parent / "metrics.json").read_text())
    assert committed["test_sets"][key]["accuracy"] == pytest.approx(accuracy, abs=0.002)
    assert committed["test_sets"][key]["n"] == len(data)


@pytest.mark.slow
@pytest.mark.parametrize("key", list(FLOORS))
def test_metrics_json_keeps_each_domain_above_its_floor(key):
    """The figures the card and pages show (metrics.json) stay at or above the floors; the test above
    checks that metrics.json is what the committed weights really score."""
    test_set = next(t for t in TEST_ONLY_SETS if t.key == key)
    if not test_set.available(SHARED_DATA):
        pytest.skip(f"{key} not found under {SHARED_DATA}")
    metrics = json.loads((SST2_SENTIMENT.weights.parent / "metrics.json").read_text())
    assert metrics["weights"] == SST2_SENTIMENT.weights.name
    row = metrics["test_sets"][key]
    assert row["accuracy"] >= FLOORS[key]
    assert 0.0 <= row["ece"] <= ECE_CEILING
    others = [v["accuracy"] for k, v in metrics["test_sets"].items() if k != "sst2_dev"]
    assert metrics["test_sets_mean_accuracy"] == pytest.approx(sum(others) / len(others), abs=1e-4)


@pytest.mark.slow
def test_label_files_are_read_with_their_header():
    folder = dataset_dir("opener_en_hotels", "test.tsv")
    data = read_label_sentence_tsv(folder / "test.tsv")
    assert len(data) == 360 and set(data.labels) == {0, 1}


def test_card_domain_table_is_written_from_metrics():
    from models.nlp.card import card_table, render_domain_table

    metrics = json.loads((SST2_SENTIMENT.weights.parent / "metrics.json").read_text())
    if "test_sets" not in metrics:
        pytest.skip("metrics.json has no per-domain scores yet (run python -m models evaluate nlp)")
    assert card_table() == render_domain_table(metrics), "run `python -m models evaluate nlp`"


def test_card_lists_every_training_source_with_its_terms():
    from models.nlp.card import card_sources, render_sources_table
    from models.nlp.domains import SST2_TRAIN_SOURCE

    metrics = json.loads((SST2_SENTIMENT.weights.parent / "metrics.json").read_text())
    if "training_sources" not in metrics:
        pytest.skip("metrics.json has no training sources yet (run python -m models evaluate nlp)")
    assert card_sources() == render_sources_table(metrics), "run `python -m models evaluate nlp`"
    keys = [source["key"] for source in metrics["training_sources"]]
    assert keys == [SST2_TRAIN_SOURCE.key, *(source.key for source in MIXED_SOURCES)]
    assert all(source["licence"] for source in metrics["training_sources"])
    # the two sources with no stated licence say so
    unlicensed = {s["key"] for s in metrics["training_sources"] if s["licence"].startswith("none stated")}
    assert {"yelp_sentences", "amazon_reviews"} <= unlicensed


def test_card_domain_table_changes_with_the_metrics(tmp_path):
    from models.nlp.card import END, START, card_table, update_card

    card = tmp_path / "MODEL_CARD.md"
    card.write_text(f"# card\n{START}\n{END}\n", encoding="utf-8")
    row = {"n": 10, "accuracy": 0.8, "ece": 0.05, "ece_temperature_1": 0.1}
    assert update_card({"test_sets": {"opener_en_hotels": row}}, card)
    assert "| 0.8000 | – | – |" in card_table(card)  # metrics written before the error directions
    assert update_card({"test_sets": {"opener_en_hotels": {**row, "accuracy": 0.9}}}, card)
    assert "| 0.9000 |" in card_table(card) and "0.8000" not in card_table(card)
    leaning = {**row, "negatives_read_positive_rate": 0.25, "positives_read_negative_rate": 0.02}
    assert update_card({"test_sets": {"opener_en_hotels": leaning}}, card)
    assert "| 0.8000 | 25.0% | 2.0% |" in card_table(card)
    assert "25.0% of its negative texts were read as positive" in card_table(card)


def test_error_directions_and_the_strongest_lean():
    """Which way the mistakes go: rows of the confusion matrix are the truth (negative, positive)."""
    from models.nlp.card import strongest_lean
    from models.nlp.evaluate import error_directions

    leaning_positive = error_directions([[60, 40], [5, 95]])
    assert leaning_positive == {"negatives_read_positive_rate": 0.4, "positives_read_negative_rate": 0.05}
    leaning_negative = error_directions([[90, 10], [30, 70]])
    assert error_directions([[0, 0], [0, 0]]) == {
        "negatives_read_positive_rate": 0.0,
        "positives_read_negative_rate": 0.0,
    }
    sentence = strongest_lean({"tweets": leaning_positive, "hotels": leaning_negative})
    assert "`tweets`" in sentence and "40.0% of its negative texts were read as positive" in sentence
    assert "5.0% of its positive texts read as negative" in sentence
    sentence = strongest_lean({"hotels": leaning_negative, "shop": error_directions([[99, 1], [1, 99]])})
    assert "`hotels`" in sentence and "30.0% of its positive texts were read as negative" in sentence
    assert strongest_lean({"old": {"accuracy": 0.9}}) == ""  # metrics written before the rates existed
