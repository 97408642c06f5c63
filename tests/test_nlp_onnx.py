"""The ONNX Runtime path serves the same model as PyTorch, packing texts together changes no answer, and the
exported graph is cached on disk (rebuilt when missing or corrupt)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from models.nlp import OnnxSentimentClassifier, onnx_cache
from services import nlp


@pytest.fixture(scope="module")
def service() -> nlp.NlpService:
    return nlp.load_service()


def test_onnx_logits_match_pytorch(service):
    classifier = service.classifier
    assert classifier.onnx is not None, "on CPU the service should serve through ONNX Runtime"
    texts = ["A superb film.", "Dull and far too long, sadly.", "Meh."]
    rows = [e.ids for e in classifier.encode(texts)]
    ids, mask = classifier.batch_ids(rows)
    with torch.inference_mode():
        expected = service.reference_model()(input_ids=ids, attention_mask=mask).logits
    packed = classifier.onnx.logits([[classifier.cls_id, *row, classifier.sep_id] for row in rows])
    assert torch.allclose(packed, expected, atol=1e-3)  # three texts share one packed row


def test_batched_answers_equal_single_answers(service):
    texts = ["Great.", "Not great at all.", "A film of rare beauty and intelligence.", "Great.", "Meh."]
    batched = service.predict_batch(texts)
    for text, result in zip(texts, batched, strict=True):
        single = service.predict(text)
        assert single["label"] == result["label"]
        assert abs(single["confidence"] - result["confidence"]) < 1e-4


def test_a_batch_larger_than_one_pass_keeps_every_answer_in_its_slot(service, monkeypatch):
    import models.nlp.packing

    texts = [
        f"The {part} was {verdict}."
        for part in ("food", "room", "staff", "view")
        for verdict in ("great", "awful")
    ]
    expected = [service.predict(text)["confidence"] for text in texts]
    passes = []

    def few_texts_per_pass(sequences, pooling):
        batches = real_pack(
            sequences, pooling, width=8, max_positions=24
        )  # a text per row, three rows a pass
        passes.extend(batches)
        return batches

    real_pack = models.nlp.packing.pack_sequences
    monkeypatch.setattr(models.nlp.packing, "pack_sequences", few_texts_per_pass)
    got = [r["confidence"] for r in service.predict_batch(texts)]
    assert len(passes) > 2
    assert got == pytest.approx(expected, abs=1e-4)


def test_identical_rows_are_run_once(service, monkeypatch):
    classifier = service.classifier
    rows = [e.ids for e in classifier.encode(["Good.", "Awful film.", "Good.", "Awful film.", "Fine"])]
    seen = []
    real = classifier.onnx.logits
    monkeypatch.setattr(
        classifier.onnx, "logits", lambda sequences: seen.append(len(sequences)) or real(sequences)
    )
    logits = classifier.logits(rows)
    assert seen == [3]
    assert torch.equal(logits[0], logits[2]) and torch.equal(logits[1], logits[3])
    monkeypatch.undo()
    alone = classifier.logits([rows[4]])
    assert torch.allclose(logits[4], alone[0], atol=1e-4)


# ---- large batches in bf16 on a CPU with matrix units (AMX) ------------------------------------------
BIG_BATCH = [
    f"The {part} was {verdict}, and I would {again} come back here with my family."
    for part in ("food", "room", "staff", "view", "price")
    for verdict, again in (("wonderful", "gladly"), ("awful", "never"))
]


def test_packed_pytorch_layers_match_the_onnx_graph(service):
    from models.nlp.packing import packed_logits

    classifier = service.classifier
    sequences = [[classifier.cls_id, *e.ids, classifier.sep_id] for e in classifier.encode(BIG_BATCH)]
    fp32 = packed_logits(classifier.packed_model, sequences)
    assert torch.allclose(fp32, classifier.onnx.logits(sequences), atol=1e-3)
    bf16 = packed_logits(classifier.packed_model, sequences, torch.bfloat16)
    assert torch.allclose(bf16, fp32, atol=0.2)
    assert torch.equal(bf16.argmax(1), fp32.argmax(1))


def test_only_a_large_batch_goes_to_bf16_and_gives_the_same_answers(service, monkeypatch):
    import services.nlp.classifier as classifier_module

    classifier = service.classifier
    rows = [e.ids for e in classifier.encode(BIG_BATCH)]
    assert sum(len(row) + 2 for row in rows) >= classifier_module.BF16_MIN_TOKENS
    assert sum(len(row) + 2 for row in rows[:2]) < classifier_module.BF16_MIN_TOKENS
    fp32 = classifier.onnx.logits([[classifier.cls_id, *row, classifier.sep_id] for row in rows])
    precisions = []
    real = classifier_module.packed_logits
    monkeypatch.setattr(
        classifier_module,
        "packed_logits",
        lambda model, sequences, dtype=None: precisions.append(dtype) or real(model, sequences, dtype),
    )
    monkeypatch.setattr(classifier, "bf16_batches", True)
    big = classifier.logits(rows)
    assert precisions == [torch.bfloat16]
    assert torch.equal(big.argmax(1), fp32.argmax(1))
    assert torch.allclose(big, fp32, atol=0.2)
    small = classifier.logits(rows[:2])
    assert precisions == [torch.bfloat16]  # two sentences: ONNX Runtime, as for a single text
    assert torch.allclose(small, fp32[:2], atol=1e-4)
    monkeypatch.setattr(classifier, "bf16_batches", False)
    assert torch.allclose(classifier.logits(rows), fp32, atol=1e-4)
    assert precisions == [torch.bfloat16]


@pytest.mark.parametrize(
    ("amx", "setting", "expected"), [(False, None, False), (True, "0", False), (True, None, True)]
)
def test_bf16_batches_need_matrix_units_and_can_be_switched_off(monkeypatch, amx, setting, expected):
    import services.nlp.classifier as classifier_module

    monkeypatch.setattr(classifier_module, "cpu_has_bf16_matrix_units", lambda: amx)
    if setting is None:
        monkeypatch.delenv(classifier_module.BF16_ENV, raising=False)
    else:
        monkeypatch.setenv(classifier_module.BF16_ENV, setting)
    assert classifier_module.SentimentClassifier(device=torch.device("cpu")).bf16_batches is expected


def test_the_matrix_unit_check_reads_the_cpu():
    from models.runtime import cpu_has_bf16_matrix_units

    assert cpu_has_bf16_matrix_units() is bool(torch.cpu.get_capabilities().get("amx_bf16", False))


# ---- the disk cache ----------------------------------------------------------------------------------
@pytest.fixture
def cache_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(folder))
    return folder


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(onnx_cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache.cache_dir() == tmp_path / "xdg" / onnx_cache.APP_FOLDER
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert onnx_cache.cache_dir() == Path.home() / ".cache" / onnx_cache.APP_FOLDER
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert onnx_cache.cache_dir() == tmp_path / "mine"


def test_cached_graph_exports_once_then_reads_the_file(cache_folder):
    exports = []

    def export() -> bytes:
        exports.append(1)
        return b"graph-bytes"

    assert onnx_cache.cached_graph("k1", export, lambda data: data == b"graph-bytes") == (
        b"graph-bytes",
        "exported",
    )
    assert onnx_cache.cached_graph("k1", export, lambda data: data == b"graph-bytes") == (
        b"graph-bytes",
        "cache",
    )
    assert len(exports) == 1
    assert (cache_folder / "k1.onnx").read_bytes() == b"graph-bytes"
    assert not list(cache_folder.glob("*.part"))  # no half-written files left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_digest", "fails_check"])
def test_a_damaged_cache_file_is_rebuilt(cache_folder, damage):
    good = b"graph-bytes" * 10
    onnx_cache.cached_graph("k2", lambda: good, lambda data: data == good)
    graph = cache_folder / "k2.onnx"
    if damage == "truncate":
        graph.write_bytes(good[:7])
    elif damage == "flip":
        graph.write_bytes(b"X" + good[1:])
    elif damage == "drop_digest":
        (cache_folder / "k2.onnx.sha256").unlink()
    check = (lambda data: False) if damage == "fails_check" else (lambda data: data == good)
    data, source = onnx_cache.cached_graph("k2", lambda: good, check)
    assert (data, source) == (good, "rebuilt")
    assert graph.read_bytes() == good


def test_an_unwritable_cache_falls_back_to_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(blocker / "cache"))
    assert onnx_cache.cached_graph("k3", lambda: b"g", lambda data: True) == (b"g", "memory")


def _tiny_classifier() -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=3000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    return BertForSequenceClassification(config).eval()


def test_real_onnx_graph_round_trips_through_the_cache(cache_folder):
    model = _tiny_classifier()
    first = OnnxSentimentClassifier(model, threads=1, cache_key="tiny")
    assert first.source == "exported"
    assert not model.training  # the export leaves the shared module's dropout off
    second = OnnxSentimentClassifier(model, threads=1, cache_key="tiny")
    assert second.source == "cache"
    ids = torch.tensor([[101, 7, 8, 9, 102]])
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(second.logits(ids.tolist()), expected, atol=1e-4)
    # garbage in the file (not a graph at all): rebuilt, and the answers are right again
    graph = cache_folder / "tiny.onnx"
    graph.write_bytes(os.urandom(graph.stat().st_size))
    third = OnnxSentimentClassifier(model, threads=1, cache_key="tiny")
    assert third.source == "rebuilt"
    assert torch.allclose(third.logits(ids.tolist()), expected, atol=1e-4)


def test_cache_key_is_the_weights_hash(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"one")
    base = tmp_path / "base.json"
    base.write_text("{}")
    key = onnx_cache.graph_key(weights, [base])
    assert key == onnx_cache.graph_key(weights, [base])
    weights.write_bytes(b"two")
    assert key != onnx_cache.graph_key(weights, [base])


def test_service_graph_came_from_the_cache_or_an_export(service):
    assert service.classifier.onnx_source in ("cache", "exported", "rebuilt", "memory")
    assert service.info()["runtime"].startswith("ONNX Runtime")


def test_a_cached_graph_with_its_reference_needs_no_pytorch_model(cache_folder):
    model = _tiny_classifier()
    builds = []

    def build() -> torch.nn.Module:
        builds.append(1)
        return model

    assert OnnxSentimentClassifier(build, threads=1, cache_key="lazy").source == "exported"
    assert len(builds) >= 1
    builds.clear()
    warm = OnnxSentimentClassifier(build, threads=1, cache_key="lazy")
    assert (warm.source, builds) == ("cache", [])  # the recorded reference outputs did the check
    ids = torch.tensor([[101, 7, 8, 102]])
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert torch.allclose(warm.logits(ids.tolist()), expected, atol=1e-4)


def test_a_wrong_reference_record_rebuilds_the_graph(cache_folder):
    model = _tiny_classifier()
    OnnxSentimentClassifier(model, threads=1, cache_key="ref")
    onnx_cache.write_reference("ref", [[123.0, -123.0]])  # disagrees with the graph
    again = OnnxSentimentClassifier(model, threads=1, cache_key="ref")
    assert again.source == "rebuilt"
    assert onnx_cache.read_reference("ref") != [[123.0, -123.0]]


def test_serving_tokenizer_matches_the_hugging_face_tokenizer(service):
    from models.nlp import load_tokenizer

    texts = [
        "Héllo wörld!! It's 5pm… naïve café 😀 日本語",
        "don't  stop\tthe   music",
        "",
        "The film's 2nd half—meh. " * 40,  # longer than the shipped file's 128-token truncation
    ]
    reference = load_tokenizer()(texts, add_special_tokens=False, return_offsets_mapping=True)
    ours = service.classifier.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    assert ours["input_ids"] == reference["input_ids"]
    assert [[tuple(o) for o in row] for row in ours["offset_mapping"]] == [
        [tuple(o) for o in row] for row in reference["offset_mapping"]
    ]
    assert len(ours["input_ids"][3]) > 128
    single = service.classifier.tokenizer(texts[0], add_special_tokens=False)
    assert single.word_ids() == load_tokenizer()(texts[0], add_special_tokens=False).word_ids()


def test_a_model_first_built_inside_inference_mode_still_explains():
    from services.nlp.classifier import SentimentClassifier
    from services.nlp.explain import integrated_gradients

    classifier = SentimentClassifier()
    assert not classifier.model_loaded  # served from the graph; the module is built on first use
    with torch.inference_mode():
        classifier.model  # noqa: B018 - that first use happens inside a caller's inference mode
    words, _ = integrated_gradients(classifier, "A superb film.", steps=4)
    assert [w.word for w in words] == ["A", "superb", "film", "."]
