"""Sentiment model: data reading, bucketing, scoring, the checkpoint format, the CLI, committed accuracy."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from models.nlp import (
    SST2_SENTIMENT,
    FineTuneSettings,
    build_trainable_classifier,
    export_finetuned_tensors,
    load_sentiment_model,
    load_tokenizer,
    read_temperature,
    write_temperature,
)
from models.nlp.scoring import (
    collate,
    evaluate_model,
    expected_calibration_error,
    fit_temperature,
    predict_logits,
    read_sst2,
)
from models.nlp.train import length_bucketed_batches
from tests.conftest import REPO_ROOT, dataset_dir

POSITIVE = [
    "a joy to watch",
    "wonderful and moving",
    "the best film of the year",
    "funny , warm and smart",
    "a brilliant cast",
    "beautifully made",
    "i loved every minute",
    "gripping and clever",
]
NEGATIVE = [
    "a boring mess",
    "dull and lifeless",
    "the worst film of the year",
    "painfully unfunny",
    "a waste of time",
    "clumsy and tedious",
    "i hated every minute",
    "flat and predictable",
]


@pytest.fixture()
def tiny_sst2(tmp_path):
    rows = [(t, 1) for t in POSITIVE] + [(t, 0) for t in NEGATIVE]
    random.Random(0).shuffle(rows)
    body = "".join(f"{text} \t{label}\n" for text, label in rows)
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n" + body * 3, encoding="utf-8")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\n" + body, encoding="utf-8")
    return tmp_path


def test_read_sst2(tiny_sst2):
    texts, labels = read_sst2(tiny_sst2 / "dev.tsv")
    assert len(texts) == 16 and set(labels) == {0, 1}
    assert all(t == t.strip() for t in texts)


def test_read_sst2_rejects_bad_header(tmp_path):
    (tmp_path / "x.tsv").write_text("text\tlabel\nhello\t1\n")
    with pytest.raises(ValueError, match="header"):
        read_sst2(tmp_path / "x.tsv")


def test_label_first_tsv_keeps_a_tab_inside_the_sentence(tmp_path):
    from models.nlp.domains import read_label_sentence_tsv

    (tmp_path / "x.tsv").write_text("label\tsentence\n1\tgood\tfood \n0\tbad\n", encoding="utf-8")
    data = read_label_sentence_tsv(tmp_path / "x.tsv")
    assert (data.name, data.texts, data.labels) == ("x", ["good\tfood", "bad"], [1, 0])
    (tmp_path / "y.tsv").write_text("sentence\tlabel\nfine\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="label<TAB>sentence"):
        read_label_sentence_tsv(tmp_path / "y.tsv")


def test_length_buckets_cover_every_row_once():
    lengths = [random.Random(i).randint(3, 60) for i in range(1000)]
    batches = length_bucketed_batches(lengths, 32, random.Random(0))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(1000))
    # padding waste stays small: within a batch lengths are close
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10


def test_collate_pads_to_longest():
    ids, mask = collate([[101, 5, 102], [101, 102]], pad_id=0)
    assert ids.tolist() == [[101, 5, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def _logits(model, texts=("a joy to watch", "a boring mess")):
    tokenizer = load_tokenizer()
    ids, mask = collate(tokenizer(list(texts))["input_ids"], tokenizer.pad_token_id)
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=mask).logits


def test_int8_weight_changes_reload_close_to_the_tuned_model(tmp_path):
    """Export -> load reproduces a perturbed model's logits: int8 rounding of the change is negligible."""
    from safetensors.torch import save_file

    settings = FineTuneSettings(pooling="mean")
    tuned = build_trainable_classifier(settings)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in tuned.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn(param.shape, generator=generator))
    tuned.eval()
    out = tmp_path / "perturbed.safetensors"
    save_file(export_finetuned_tensors(tuned, settings), str(out))
    state = load_file(str(out))
    deltas = [k for k in state if k.endswith(".delta_int8")]
    assert deltas and all(state[k].dtype == torch.int8 for k in deltas)
    assert not any("word_embeddings" in k for k in state)  # the 30k-word table is never trained
    assert out.stat().st_size < 14_000_000  # int8 changes of the encoder matrices, not the 91 MB base
    reloaded = load_sentiment_model(
        replace(SST2_SENTIMENT, weights=out, finetune=settings), torch.device("cpu")
    )
    assert torch.allclose(_logits(reloaded), _logits(tuned), atol=2e-3)


def test_settings_reject_unknown_choices():
    with pytest.raises(ValueError, match="pooling"):
        FineTuneSettings(pooling="max")


def test_loading_weights_with_wrong_settings_fails_clearly(tiny_sst2, tmp_path):
    bad = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file({"nonsense.weight": torch.zeros(2)}, str(bad))
    with pytest.raises(RuntimeError, match="does not match"):
        load_sentiment_model(replace(SST2_SENTIMENT, weights=bad), torch.device("cpu"))


def test_train_cli_requires_data_dir():
    proc = subprocess.run(
        [sys.executable, "-m", "models", "train", "nlp"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "--data-dir" in proc.stderr


def test_train_cli_offers_only_the_shipped_recipe():
    proc = subprocess.run(
        [sys.executable, "-m", "models", "train", "nlp", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", proc.stdout))
    assert options == {
        "--help",
        "--data-dir",
        "--out",
        "--work-dir",
        "--threads",
        "--seed",
        "--epochs",
        "--per-epoch-scale",
        "--limit-rows",
        "--balance-labels",  # experiments that lost on validation, kept so their records can be rerun
        "--sst2-first-epochs",
    }


def test_padding_does_not_change_a_text_s_logits():
    """Texts scored in length-sorted, padded batches give the logits each text gets alone."""
    model = build_trainable_classifier(FineTuneSettings()).eval()
    tokenizer = load_tokenizer()
    texts = ["a joy", "the worst film of the year , by far", "fine", "i hated every minute of it"]
    together = predict_logits(model, tokenizer, texts, batch_size=4)
    alone = torch.cat([predict_logits(model, tokenizer, [t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)
    assert not torch.allclose(together[0], together[1])  # different texts, different logits


@pytest.mark.slow
def test_committed_weights_accuracy_on_sst2_dev():
    folder = dataset_dir("sst2", "dev.tsv")
    texts, labels = read_sst2(folder / "dev.tsv")
    model = load_sentiment_model(SST2_SENTIMENT, torch.device("cpu"))
    metrics = evaluate_model(model, load_tokenizer(), texts, labels)
    assert metrics["n"] == 872
    # A floor under the shipped figure: the multi-domain stage gave up a little of SST-2 dev (movie reviews)
    # for the other domains; the card's table has every set.
    assert metrics["accuracy"] >= 0.885, metrics
    committed = json.loads((SST2_SENTIMENT.weights.parent / "metrics.json").read_text())
    assert committed["accuracy"] == pytest.approx(metrics["accuracy"], abs=0.002)


def test_fit_temperature_recovers_the_overconfidence_factor():
    generator = torch.Generator().manual_seed(0)
    honest = 2.0 * torch.randn(20_000, 2, generator=generator)  # labels really drawn from softmax(honest)
    labels = torch.multinomial(torch.softmax(honest, dim=-1), 1, generator=generator).squeeze(1).tolist()
    assert fit_temperature(3.0 * honest, labels) == pytest.approx(3.0, rel=0.05)
    assert expected_calibration_error(torch.softmax(honest, dim=-1), labels) < 0.02
    assert expected_calibration_error(torch.softmax(3.0 * honest, dim=-1), labels) > 0.05


def test_expected_calibration_error_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    # bins: 0.9 (two answers, one right) -> |0.5 - 0.9|; 0.8 (right) -> |1 - 0.8|; 0.6 (wrong) -> |0 - 0.6|
    expected = 0.5 * 0.4 + 0.25 * 0.2 + 0.25 * 0.6
    assert expected_calibration_error(probs, [0, 1, 1, 0]) == pytest.approx(expected, abs=1e-4)


def test_temperature_metadata_round_trip(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"x": torch.ones(3)}, str(path), metadata={"soup_of": "[]"})
    assert read_temperature(path) == 1.0  # none stored: logits are used as they are
    write_temperature(path, 2.5)
    assert read_temperature(path) == 2.5
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["soup_of"] == "[]" and torch.equal(handle.get_tensor("x"), torch.ones(3))
    save_file({"x": torch.ones(3)}, str(path), metadata={"temperature": "-1"})
    with pytest.raises(ValueError, match="temperature"):
        read_temperature(path)


def test_shipped_weights_carry_a_fitted_temperature():
    assert 1.0 < SST2_SENTIMENT.get_temperature() < 5.0
    committed = json.loads((SST2_SENTIMENT.weights.parent / "metrics.json").read_text())
    assert committed["temperature"] == pytest.approx(SST2_SENTIMENT.get_temperature(), abs=1e-4)
    # The temperature is fitted on the pooled validation rows, so that is where it must calibrate; on a
    # test-only set it may help or not (SST-2 dev: 0.0328 unscaled, 0.0347 scaled), and both are reported.
    record = json.loads((SST2_SENTIMENT.weights.parent / "sentiment.train.json").read_text())["calibration"]
    assert record["temperature"] == pytest.approx(committed["temperature"], abs=1e-4)
    assert record["validation_ece"] < 0.02
    assert {"ece", "ece_temperature_1"} <= committed.keys()
