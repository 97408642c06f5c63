"""Sentence embeddings of the *base* MiniLM (no fine-tuning), for similarity and extractive summaries.

Mean pooling over tokens, L2-normalised, as sentence-transformers does; a text longer than the
encoder window is embedded window by window and the vectors averaged, weighted by their length.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch

from models.nlp import load_encoder, mean_pool
from models.runtime import inference_context
from services.errors import InputTooLargeError, NothingFoundError
from services.nlp.classifier import FORWARD_BATCH, SentimentClassifier
from services.nlp.inputs import MAX_SUMMARY_SENTENCES, split_sentences, validate_text

ENCODER_WINDOW = 256  # tokens per window (sentence-transformers' max_seq_length for this model)
SIMILARITY_VERDICTS = ((0.75, "very similar"), (0.5, "related"), (0.25, "loosely related"))
PAGERANK_DAMPING = 0.85


class SentenceEmbedder:
    """Base-encoder embeddings; shares the classifier's tokenizer (same vocabulary)."""

    def __init__(self, classifier: SentimentClassifier):
        self._tokens = classifier
        self.device = classifier.device
        self._encoder: torch.nn.Module | None = None
        self._encoder_lock = threading.Lock()

    @property
    def encoder(self) -> torch.nn.Module:
        """The untouched base encoder, built on first use (or by the service's warm-up) so that it
        does not lengthen the start."""
        if self._encoder is None:
            with self._encoder_lock:
                if self._encoder is None:
                    self._encoder = load_encoder(self.device)
        return self._encoder

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, 384) L2-normalised embeddings."""
        rows: list[list[int]] = []
        owner: list[tuple[int, int]] = []  # (text index, word pieces) of each row
        for index, (text, encoded) in enumerate(zip(texts, self._tokens.encode(texts), strict=True)):
            for window in self._tokens.windows(text, encoded, ENCODER_WINDOW - 2):
                rows.append(window.ids)
                owner.append((index, max(1, len(window.ids))))
        out = torch.zeros((len(texts), self.encoder.config.hidden_size))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        with inference_context(self.device):
            for start in range(0, len(order), FORWARD_BATCH):
                idx = order[start : start + FORWARD_BATCH]
                ids, mask = self._tokens.batch_ids([rows[i] for i in idx])
                hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                vectors = mean_pool(hidden, mask).cpu()
                for j, row in enumerate(idx):
                    text_index, weight = owner[row]
                    out[text_index] += weight * vectors[j]
        return torch.nn.functional.normalize(out, p=2, dim=1)

    def similarity(self, text_a: Any, text_b: Any) -> dict[str, Any]:
        """Cosine similarity of the two texts' embeddings, in [-1, 1], with a verdict in words."""
        started = time.perf_counter()
        clean_a, notes_a = validate_text(text_a)
        clean_b, notes_b = validate_text(text_b)
        vectors = self.embed([clean_a, clean_b])
        score = 1.0 if clean_a == clean_b else float(torch.clamp(vectors[0] @ vectors[1], -1.0, 1.0))
        verdict = next((name for floor, name in SIMILARITY_VERDICTS if score >= floor), "unrelated")
        return {
            "similarity": round(score, 4),
            "verdict": verdict,
            "notes": sorted(set(notes_a + notes_b)),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    def summarize(self, text: Any, n_sentences: int = 3) -> dict[str, Any]:
        """The `n_sentences` most central sentences (LexRank-style PageRank over cosine similarities),
        verbatim and in their original order."""
        started = time.perf_counter()
        clean, notes = validate_text(text)
        spans = split_sentences(clean)
        if not spans:
            raise NothingFoundError("No sentences were found in the text.")
        if len(spans) > MAX_SUMMARY_SENTENCES:
            raise InputTooLargeError(
                f"The text has {len(spans)} sentences; the summariser takes at most {MAX_SUMMARY_SENTENCES}."
            )
        n_sentences = max(1, int(n_sentences))
        sentences = [clean[s:e] for s, e in spans]
        verdict = None
        if len(sentences) <= n_sentences:
            scores = [1.0] * len(sentences)
            chosen = list(range(len(sentences)))
            notes.append(f"The text has only {len(sentences)} sentence(s), so all of them are returned.")
        else:
            scores = centrality(self.embed(sentences))
            verdict = verdict_sentence(clean, spans)
            # The verdict keeps its slot; the most central of the other sentences fill the rest.
            ranked = [i for i in sorted(range(len(sentences)), key=lambda i: -scores[i]) if i != verdict]
            picked = ([verdict] if verdict is not None else []) + ranked
            chosen = sorted(picked[:n_sentences])
            # Say so when centrality alone would have left the verdict out.
            if verdict is not None and sum(score > scores[verdict] for score in scores) >= n_sentences:
                notes.append(
                    "The closing verdict is kept although it repeats no single part of the text; "
                    "the most central other sentences fill the rest."
                )
        return {
            "summary": [sentences[i] for i in chosen],
            "indices": chosen,
            "verdict": verdict,
            "n_sentences": len(sentences),
            "sentences": [
                {"index": i, "text": sentence, "score": round(scores[i], 4), "selected": i in chosen}
                for i, sentence in enumerate(sentences)
            ],
            "notes": notes,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }


# A closing judgement opens with one of these ("Overall this is an uneven but often rewarding ...").
CONCLUSION_CUES = (
    "overall",
    "in short",
    "in conclusion",
    "in sum",
    "all in all",
    "all told",
    "to sum up",
    "to conclude",
    "on balance",
    "in the end",
    "ultimately",
    "bottom line",
    "the verdict",
)
_PARAGRAPH_BREAK_RE = re.compile(r"\n\s*\n")


def verdict_sentence(text: str, spans: list[tuple[int, int]]) -> int | None:
    """The index of the text's verdict: the last sentence that opens with a conclusion cue, else, in a
    text of several paragraphs, the first sentence of the last paragraph (reviews and reports end on
    their judgement, which centrality alone ranks low because it repeats no single part). None for a
    one-paragraph text without a cue, such as a news report."""
    for index in range(len(spans) - 1, -1, -1):
        start, end = spans[index]
        opening = text[start:end].lower().lstrip("\"'“‘(")
        if any(
            opening.startswith(cue) and not opening[len(cue) : len(cue) + 1].isalpha()
            for cue in CONCLUSION_CUES
        ):
            return index
    breaks = [match.end() for match in _PARAGRAPH_BREAK_RE.finditer(text.rstrip())]
    if not breaks:
        return None
    last_paragraph = breaks[-1]
    return next((index for index, (start, _) in enumerate(spans) if start >= last_paragraph), None)


def centrality(vectors: torch.Tensor) -> list[float]:
    """PageRank of the sentence graph weighted by positive cosine similarity, scaled so the top is 1."""
    n = vectors.shape[0]
    sim = (vectors @ vectors.T).clamp(min=0.0)  # (N, N)
    sim.fill_diagonal_(0.0)
    rows = sim.sum(dim=1, keepdim=True)
    transition = torch.where(rows > 0, sim / rows.clamp(min=1e-9), torch.full_like(sim, 1 / n))
    rank = torch.full((n,), 1 / n)
    for _ in range(100):  # power iteration
        updated = (1 - PAGERANK_DAMPING) / n + PAGERANK_DAMPING * (transition.T @ rank)
        converged = torch.allclose(updated, rank, atol=1e-7)
        rank = updated
        if converged:
            break
    return (rank / rank.max()).tolist()
