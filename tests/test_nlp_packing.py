"""Packing texts end to end into shared rows: every token placed once, positions and attention kept per
text, and the packed classifier giving each text the logits it gets alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.nlp.packing import PackedClassifier, pack_sequences, pooling_of


def _sequences() -> list[list[int]]:
    rng = np.random.default_rng(0)
    return [[101, *rng.integers(1000, 2900, n).tolist(), 102] for n in (1, 7, 3, 30, 12, 5, 60, 2, 9, 14)]


def test_every_token_is_placed_once_with_its_own_positions():
    sequences = _sequences()
    (batch,) = pack_sequences(sequences)
    assert sorted(batch.texts) == list(range(len(sequences)))
    flat_ids = batch.input_ids.reshape(-1)
    flat_positions = batch.position_ids.reshape(-1)
    for slot, text in enumerate(batch.texts):
        weights = batch.pooling[slot]
        tokens = np.flatnonzero(weights)
        assert flat_ids[tokens].tolist() == sequences[text]
        assert flat_positions[tokens].tolist() == list(range(len(sequences[text])))
        assert weights.sum() == pytest.approx(1.0)
        assert len(set(batch.segment_ids.reshape(-1)[tokens])) == 1  # one segment per text, never 0
        assert batch.segment_ids.reshape(-1)[tokens][0] > 0
    assert (batch.segment_ids > 0).sum() == sum(map(len, sequences))  # nothing else is a text
    assert batch.input_ids.shape[1] <= 64 and batch.input_ids.size < 1.25 * sum(map(len, sequences))


def test_a_short_batch_is_not_padded_and_a_long_text_gets_its_own_row():
    (short,) = pack_sequences([[101, 5, 102], [101, 6, 7, 102]])
    assert short.input_ids.shape == (1, 7)
    long_text = [101, *range(1000, 1098), 102]
    (batch,) = pack_sequences([long_text, [101, 5, 102]])
    assert batch.input_ids.shape[1] == 100


def test_cls_pooling_weights_the_first_token_only():
    (batch,) = pack_sequences([[101, 5, 102], [101, 6, 7, 102]], pooling="cls")
    assert batch.pooling.sum(axis=1).tolist() == [1.0, 1.0]
    assert sorted(batch.input_ids.reshape(-1)[batch.pooling.argmax(axis=1)].tolist()) == [101, 101]


def test_a_position_budget_splits_the_passes_and_keeps_every_text_once():
    sequences = _sequences()
    batches = pack_sequences(sequences, max_positions=64)
    assert len(batches) > 1
    assert sorted(t for b in batches for t in b.texts) == list(range(len(sequences)))
    assert all(b.input_ids.size <= 64 for b in batches)


def test_bad_requests_are_refused():
    assert pack_sequences([]) == []
    with pytest.raises(ValueError):
        pack_sequences([[101, 102], []])
    with pytest.raises(ValueError):
        pack_sequences([[101, 102]], pooling="max")


def _tiny(mean_pooled: bool) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=3000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    if not mean_pooled:
        return BertForSequenceClassification(config).eval()
    from models.nlp import _mean_pooled_classifier_class

    return _mean_pooled_classifier_class()(config).eval()


@pytest.mark.parametrize("mean_pooled", [True, False], ids=["mean-pooled", "bert-pooler"])
def test_packed_logits_equal_each_text_alone(mean_pooled):
    model = _tiny(mean_pooled)
    assert pooling_of(model) == ("mean" if mean_pooled else "cls")
    sequences = _sequences()
    with torch.no_grad():
        alone = torch.cat(
            [
                model(
                    input_ids=torch.tensor([s]), attention_mask=torch.ones(1, len(s), dtype=torch.long)
                ).logits
                for s in sequences
            ]
        )
        packed = torch.zeros_like(alone)
        for batch in pack_sequences(sequences, pooling_of(model), max_positions=128):
            feed = [torch.from_numpy(a) for a in batch.feed().values()]
            packed[batch.texts] = PackedClassifier(model)(*feed)
    assert torch.allclose(packed, alone, atol=1e-5)
