"""Why the classifier said what it said: integrated gradients on the word embeddings.

f = logit(positive) - logit(negative). The baseline puts the [PAD] embedding at every word piece and
keeps [CLS] and [SEP]; the path integral is approximated with the midpoint rule in one batched
forward and backward pass. Word-piece scores are summed per word. Completeness: the scores of a
window sum to f(text) - f(baseline) up to the approximation error, which is reported as `delta`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from models.runtime import inference_context
from services.nlp.classifier import SentimentClassifier

MAX_EXPLAIN_CHUNKS = 3  # word highlights are computed for at most this many windows of a long text
IG_STEPS = 16  # interpolation steps (one batched forward/backward)
IG_STEPS_LONG = 8  # steps per window when a long text is explained window by window (keeps it ~1 s)


@dataclass(frozen=True)
class WordScore:
    word: str
    start: int  # character span in the explained text
    end: int
    score: float  # > 0 pushes towards "positive"

    def as_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Explanation:
    words: list[WordScore]
    delta: float  # completeness gap of the window with the largest one, in logits
    steps: int
    explained_chunks: int
    total_chunks: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": f"integrated gradients, {self.steps} steps, [PAD] baseline",
            "explained_chunks": self.explained_chunks,
            "total_chunks": self.total_chunks,
            "delta": round(self.delta, 4),
        }


def explain_text(classifier: SentimentClassifier, text: str, spans: list[tuple[int, int]]) -> Explanation:
    """Word scores for the first MAX_EXPLAIN_CHUNKS of the windows `spans` of `text`."""
    explained = spans[:MAX_EXPLAIN_CHUNKS]
    steps = IG_STEPS if len(spans) == 1 else IG_STEPS_LONG
    words: list[WordScore] = []
    deltas: list[float] = []
    for start, end in explained:
        window_words, delta = integrated_gradients(classifier, text[start:end], steps)
        words += [WordScore(w.word, w.start + start, w.end + start, w.score) for w in window_words]
        deltas.append(delta)
    return Explanation(words, max(deltas, key=abs) if deltas else 0.0, steps, len(explained), len(spans))


def integrated_gradients(
    classifier: SentimentClassifier, text: str, steps: int
) -> tuple[list[WordScore], float]:
    """Per-word scores of one window and the completeness gap f(text) - f(baseline) - sum(scores)."""
    model, device = classifier.model, classifier.device
    with classifier._tok_lock:
        enc = classifier.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        word_ids = enc.word_ids()
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if not ids:
        return [], 0.0
    input_ids, mask = classifier.batch_ids([ids])  # (1, T)
    embed = model.get_input_embeddings()
    with torch.no_grad():
        actual = embed(input_ids)  # (1, T, H)
        baseline = embed(torch.full_like(input_ids, classifier.pad_id))
        baseline[:, 0] = actual[:, 0]  # keep [CLS]
        baseline[:, -1] = actual[:, -1]  # keep [SEP]
    alphas = (torch.arange(steps, device=device, dtype=actual.dtype) + 0.5) / steps  # midpoint rule
    path = (baseline + alphas[:, None, None] * (actual - baseline)).detach().requires_grad_(True)  # (S, T, H)
    pos, neg = classifier.labels.index("positive"), classifier.labels.index("negative")
    with torch.enable_grad():
        logits = model(inputs_embeds=path, attention_mask=mask.expand(steps, -1)).logits.float()
        margin = logits[:, pos] - logits[:, neg]  # (S,)
        (grads,) = torch.autograd.grad(margin.sum(), path)
    token_scores = ((actual - baseline) * grads.mean(dim=0, keepdim=True)).sum(-1)[0, 1:-1]  # (T-2,)
    with inference_context(device):
        ends = model(
            inputs_embeds=torch.cat([actual, baseline]), attention_mask=mask.expand(2, -1)
        ).logits.float()
    target = float((ends[0, pos] - ends[0, neg]) - (ends[1, pos] - ends[1, neg]))
    scores = token_scores.detach().float().cpu().tolist()
    merged: list[list] = []  # [word id, start, end, score]
    for i, word in enumerate(word_ids):
        start, end = offsets[i]
        if merged and word is not None and merged[-1][0] == word:
            merged[-1][2] = end
            merged[-1][3] += scores[i]
        else:
            merged.append([word, start, end, scores[i]])
    words = [WordScore(text[s:e], s, e, score) for _, s, e, score in merged]
    return words, target - sum(scores)
