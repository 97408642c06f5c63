"""The ONNX Runtime path serves the same model as PyTorch, and length batching changes no answer."""

import torch

from services import nlp


def test_onnx_logits_match_pytorch():
    service = nlp.load_service()
    assert service._onnx is not None, "on CPU the service should serve through ONNX Runtime"
    rows = [service._encode([text])[0][0] for text in ("A superb film.", "Dull and far too long, sadly.")]
    ids, mask = service._batch_ids(rows)
    with torch.inference_mode():
        expected = service.reference_model()(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(service._onnx.logits(ids, mask), expected, atol=1e-3)


def test_batched_answers_equal_single_answers():
    service = nlp.load_service()
    texts = ["Great.", "Not great at all.", "A film of rare beauty and intelligence.", "Great.", "Meh."]
    batched = service.predict_batch(texts)
    for text, result in zip(texts, batched, strict=True):
        single = service.predict(text)
        assert single["label"] == result["label"]
        assert abs(single["confidence"] - result["confidence"]) < 1e-4


def test_length_batches_never_pad_on_cpu():
    service = nlp.load_service()
    rows = [[1] * n for n in (5, 3, 5, 9, 3, 3)]
    groups = service._length_batches(rows)
    assert sorted(i for group in groups for i in group) == list(range(len(rows)))
    assert all(len({len(rows[i]) for i in group}) == 1 for group in groups)
