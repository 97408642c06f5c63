"""The sentiment recipe (models.nlp.train): sampling, long texts, a tiny run and its resume."""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import replace

import pytest
import torch

from models.nlp import SST2_SENTIMENT, FineTuneSettings, load_sentiment_model
from models.nlp.domains import MIXED_SOURCES, load_multi_domain
from models.nlp.scoring import head_and_tail
from models.nlp.train import MixedConfig, SourceStream, per_epoch_counts, plan_epochs, train_mixed
from tests.test_nlp_domains import tiny_root  # noqa: F401  (the fixture)

SETTINGS = FineTuneSettings(pooling="mean")
TINY = MixedConfig(
    epochs=2,
    batch_size=8,
    sst2_validation_rows=8,
    per_epoch_scale=0.004,
    soup_sizes=(2,),
    seed=0,
    log_every=1000,
    checkpoint_every=1,
)


def test_head_and_tail_keeps_both_ends_of_a_long_text():
    ids = [101, *range(1000, 1300), 102]
    cut = head_and_tail(ids, 10)
    assert cut == [101, 1000, 1001, 1002, 1003, 1296, 1297, 1298, 1299, 102]
    assert head_and_tail([101, 5, 6, 102], 10) == [101, 5, 6, 102]  # short: unchanged


def test_a_source_stream_draws_every_row_before_repeating_one():
    stream = SourceStream(10, random.Random(0))
    first, second = stream.draw(6), stream.draw(6)
    assert sorted(first + second[:4]) == list(range(10))  # one full pass, then a new shuffle
    assert len(set(first)) == 6
    assert SourceStream(0, random.Random(0)).draw(5) == []


def test_the_epoch_plan_follows_the_source_weights_and_the_seed(tiny_root):  # noqa: F811
    splits = load_multi_domain(tiny_root, MIXED_SOURCES, sst2_validation_rows=8, seed=0)
    config = replace(TINY, per_epoch_scale=0.01)
    counts = per_epoch_counts(splits, config)
    assert counts["sst2"] == round(config.sst2_per_epoch * 0.01)
    assert counts["finance_tweets"] < counts["goemotions"]  # finance is weighted low
    plans = plan_epochs(splits, config)
    assert plans == plan_epochs(splits, config)  # a resumed run trains on the same rows
    assert [sum(k == "sst2" for k, _ in plan) for plan in plans] == [counts["sst2"]] * config.epochs


def test_each_source_is_drawn_half_negative_half_positive(tiny_root):  # noqa: F811
    # a source that is three quarters positive, like GoEmotions' two to one
    rows = "".join(f"{int(i % 4 != 0)}\tcomment number {i} about my day\n" for i in range(80))
    (tiny_root / "goemotions_sentiment" / "train.tsv").write_text(
        "label\tsentence\n" + rows, encoding="utf-8"
    )
    splits = load_multi_domain(tiny_root, MIXED_SOURCES, sst2_validation_rows=8, seed=0)
    assert sum(splits.train["goemotions"].labels) > 0.7 * len(splits.train["goemotions"])
    config = replace(TINY, per_epoch_scale=1.0, epochs=1)
    for balance, expected in ((True, 0.5), (False, None)):
        plan = plan_epochs(splits, replace(config, balance_labels=balance))[0]
        labels = [splits.train[k].labels[i] for k, i in plan if k == "goemotions"]
        share = sum(labels) / len(labels)
        if expected is None:
            assert share > 0.7  # unbalanced draws keep the source's mix
        else:
            assert abs(share - expected) <= 1 / len(labels)


def test_the_sst2_validation_slice_is_never_trained_on(tiny_root):  # noqa: F811
    rows = "".join(f"phrase number {i} of the film\t{i % 2}\n" for i in range(40))
    (tiny_root / "sst2" / "train.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    splits = load_multi_domain(tiny_root, MIXED_SOURCES, sst2_validation_rows=8, seed=0)
    held_out = set(splits.validation["sst2"].texts)
    trained = {splits.train[k].texts[i] for plan in plan_epochs(splits, TINY) for k, i in plan if k == "sst2"}
    assert len(held_out) == 8 and len(splits.train["sst2"]) == 32
    assert trained and not held_out & trained


def test_a_tiny_run_trains_picks_on_validation_and_resumes(tiny_root, tmp_path):  # noqa: F811
    torch.set_num_threads(1)
    out, work = tmp_path / "sentiment.safetensors", tmp_path / "work"

    class Interrupted(Exception):
        pass

    def stop_in_epoch_two(line: str) -> None:
        if line.startswith("epoch 1 done"):
            raise Interrupted

    with pytest.raises(Interrupted):
        train_mixed(tiny_root, out, work, TINY, SETTINGS, progress=stop_in_epoch_two)
    assert json.loads((work / "resume.json").read_text())["epoch"] == 2  # epoch 1 was saved
    lines: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = train_mixed(tiny_root, out, work, TINY, SETTINGS, progress=lines.append)
    assert any(line.startswith("resuming from") for line in lines)
    # replaying the learning-rate schedule on resume is deliberate, so PyTorch's warning about it is not shown
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert set(record["candidates_validation"]) == {"epoch 1", "epoch 2", "soup of the last 2 epochs"}
    chosen = record["candidates_validation"][record["chosen"]]["macro"]
    assert chosen == max(
        record["candidates_validation"][name]["macro"] for name in ("epoch 2", "soup of the last 2 epochs")
    )
    assert set(record["validation"]) == {"sst2", *(s.key for s in MIXED_SOURCES), "macro"}
    model = load_sentiment_model(replace(SST2_SENTIMENT, weights=out, finetune=SETTINGS), torch.device("cpu"))
    assert not model.training
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["mixed"])["chosen"] == record["chosen"]
    assert float(metadata["temperature"]) == pytest.approx(record["calibration"]["temperature"], abs=1e-4)


def test_the_cli_trains_the_recipe_and_records_its_command(tiny_root, tmp_path):  # noqa: F811
    from models.nlp.cli import main

    # the recipe holds out 1,000 SST-2 train rows before the first step, so SST-2 needs more than that
    rows = "".join(f"phrase number {i} of the film\t{i % 2}\n" for i in range(1100))
    (tiny_root / "sst2" / "train.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    out, work = tmp_path / "cli.safetensors", tmp_path / "cli-work"
    argv = [
        "--data-dir",
        str(tiny_root / "sst2"),
        "--threads",
        "1",
        "--out",
        str(out),
        "--work-dir",
        str(work),
    ]
    argv += ["--epochs", "1", "--per-epoch-scale", "0.002", "--limit-rows", "16", "--seed", "3"]
    assert main("train", argv) == 0
    record = json.loads(out.with_suffix(".train.json").read_text())
    assert record["command"] == "python -m models train nlp " + " ".join(argv)
    assert record["recipe"] == "mixed" and record["chosen"] == "epoch 1"
    assert (record["config"]["epochs"], record["config"]["seed"], record["config"]["limit_rows"]) == (
        1,
        3,
        16,
    )
    assert record["config"]["per_epoch_scale"] == 0.002
    assert (work / "epoch1.safetensors").is_file()
    assert load_sentiment_model(replace(SST2_SENTIMENT, weights=out), torch.device("cpu")) is not None


def test_the_sst2_first_stage_trains_on_sst2_alone_and_the_mixed_stage_starts_from_it(tiny_root, tmp_path):  # noqa: F811
    from safetensors.torch import load_file

    from models.nlp.train import train_sentiment

    torch.set_num_threads(1)
    out, work = tmp_path / "sentiment.safetensors", tmp_path / "work"
    config = replace(TINY, epochs=1, sst2_first_epochs=1, soup_sizes=())
    lines: list[str] = []
    record = train_sentiment(tiny_root, out, work, config, SETTINGS, progress=lines.append)
    first = record["sst2_first"]
    assert set(first["train_rows"]) == {"sst2"} and set(first["validation"]) == {"sst2", "macro"}
    # every SST-2 row each epoch (times the tiny run's scale), not the mixed stage's share
    assert first["rows_per_epoch"]["sst2"] == max(
        1, round(first["train_rows"]["sst2"] * TINY.per_epoch_scale)
    )
    # the mixed stage started from the SST-2 stage's last epoch and validates on every source
    start = work / "sst2_first" / "epoch1.safetensors"
    assert f"starting from {start}" in lines
    assert set(record["validation"]) == {"sst2", *(s.key for s in MIXED_SOURCES), "macro"}
    assert record["config"]["sst2_first_epochs"] == 1
    assert record["train_minutes"] >= first["train_minutes"]
    # both stages hold out the same SST-2 rows, so none of the chosen stage's validation was trained on
    splits = load_multi_domain(
        tiny_root, MIXED_SOURCES, sst2_validation_rows=TINY.sst2_validation_rows, seed=0
    )
    assert first["validation_rows"]["sst2"] == len(splits.validation["sst2"])
    # a rerun skips the finished SST-2 stage instead of training it again
    before = load_file(str(start))
    lines.clear()
    train_sentiment(tiny_root, out, work, config, SETTINGS, progress=lines.append)
    assert any(line.startswith("SST-2-first stage already done") for line in lines)
    assert all(torch.equal(before[k], v) for k, v in load_file(str(start)).items())
