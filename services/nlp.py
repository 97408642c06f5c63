"""Language service: sentiment with word attributions, semantic similarity, extractive summaries.

- Sentiment: all-MiniLM-L6-v2 fine-tuned on SST-2 (models/nlp), rebuilt from base + committed changes at load.
  Texts longer than the model window are split into sentence-aligned chunks, each chunk is
  classified and the probabilities are averaged weighted by chunk length (`chunked` says so).
- Attributions: integrated gradients on the word embeddings (baseline: [PAD] embeddings), summed over
  the word pieces of each word. Positive scores push towards "positive".
- Similarity and summaries: the *base* MiniLM sentence embeddings (mean pooling, L2-normalised).

Validate -> preprocess -> forward (inside `inference_context`) -> plain dicts. The service object is
immutable after load and safe to share between threads.

CLI: `python -m services.nlp "text" ...` or `python -m services.nlp --file reviews.txt`.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import logging
import os
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.nlp import (
    LABELS,
    PACKAGE_DIR,
    SST2_SENTIMENT,
    OnnxSentimentClassifier,
    SentimentBundle,
    load_encoder,
    load_sentiment_model,
    mean_pool,
)
from models.runtime import inference_context, select_device
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)

logger = logging.getLogger(__name__)

# ---- documented limits -------------------------------------------------------------------------
MAX_CHARS = 20_000  # longest text accepted by sentiment, similarity and summary (characters)
MAX_UPLOAD_BYTES = 2_000_000  # batch file (CSV/TXT) size limit
MAX_BATCH_TEXTS = 1_000  # rows in one batch file
MAX_SUMMARY_SENTENCES = 400  # sentences considered by the summariser
MAX_EXPLAIN_CHUNKS = 3  # word highlights are computed for at most this many chunks of a long text
IG_STEPS = 16  # integrated-gradients interpolation steps (one batched forward/backward)
IG_STEPS_LONG = 8  # steps per chunk when a long text is explained chunk by chunk (keeps it ~1 s)
LOW_CONFIDENCE = 0.75  # below this the answer is flagged as a low-confidence guess
MAX_NONPRINTABLE_SHARE = 0.05  # more control/replacement characters than this -> binary junk
ENCODER_WINDOW = 256  # tokens per chunk for sentence embeddings (sentence-transformers' max_seq_length)
FORWARD_BATCH = 64  # sequences per forward pass

EXAMPLES_DIR = PACKAGE_DIR / "examples"
TEXT_COLUMNS = ("text", "sentence", "review", "content", "comment")

_ENGLISH_HINTS = frozenset(  # common English function words: real English prose is ~40 % these
    "the a an and or but is are was were be been being it its this that these those i me my you your he him his "
    "she her we our they them their of to in on for with not no at by from as so very too just have has had do "
    "does did will would can could should there what which who when where how all more most some any one if then "
    "than also only about into over after up out".split()
)
_FOREIGN_HINTS = frozenset(  # frequent function words of Spanish, French, German, Italian, Portuguese, Dutch
    "de la el los las y del que en por con muy una un es le les et est une il elle pas des du au sur pour avec "
    "der die das und ist nicht mit für ein eine sehr auch aber war ich sie wir che di è il della non per sono "
    "um uma não os como mais foi het een niet ook van".split()
)
_TAG_RE = re.compile(r"<[^<>]{0,500}>")
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|\n\s*")


# ---- validation -----------------------------------------------------------------------------------
def validate_text(text: Any) -> tuple[str, list[str]]:
    """Check one text; returns (text to model, notes). Raises an InputError for unusable input.

    Size is checked first, so a huge input is refused in constant time.
    """
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_CHARS * 4:
            raise InputTooLargeError(f"The text is too long: the limit is {MAX_CHARS:,} characters.")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptInputError("This does not look like text (it is not valid UTF-8).") from err
    if not isinstance(text, str):
        raise UnsupportedFormatError("Please send text (a string).")
    if len(text) > MAX_CHARS:
        raise InputTooLargeError(
            f"The text has {len(text):,} characters; the limit is {MAX_CHARS:,}. Please shorten it or split it."
        )
    if not text.strip():
        raise EmptyInputError("Please enter some text: the input is empty.")
    junk = sum(
        1
        for ch in text
        if ch == "\ufffd" or (unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\n\r\t")
    )
    if junk / len(text) > MAX_NONPRINTABLE_SHARE:
        raise CorruptInputError(
            "This looks like binary data, not text "
            f"({junk / len(text):.0%} of the characters are control or unreadable characters)."
        )
    notes: list[str] = []
    if _TAG_RE.search(text):
        stripped = html.unescape(_TAG_RE.sub(" ", text))
        if not stripped.strip():
            raise NothingFoundError("The input holds only markup tags and no text to read.")
        notes.append("HTML/XML tags were removed before reading the text.")
        text = stripped
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        raise NothingFoundError(
            "There are no words to read here (only emoji, digits, symbols or punctuation). "
            "The model reads English words; please type a sentence."
        )
    non_latin = sum(1 for ch in letters if ord(ch) > 0x24F)
    words = re.findall(r"[^\W\d_]+", text.lower())
    if non_latin / len(letters) > 0.3:
        notes.append(
            "This text looks mostly non-English (non-Latin script). The model was trained on English movie "
            "reviews only, so the answer below is a guess."
        )
    elif words and (
        sum(word in _FOREIGN_HINTS for word in words)
        >= max(2, sum(word in _ENGLISH_HINTS for word in words) + 1)
        or (len(words) >= 12 and sum(word in _ENGLISH_HINTS for word in words) / len(words) < 0.1)
    ):
        notes.append(
            "This text may not be English. The model was trained on English movie reviews only, "
            "so treat the answer with caution."
        )
    return text, notes


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of `text`, whitespace excluded, verbatim order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        end = match.end()
        piece = text[start:end]
        if piece.strip():
            left = start + (len(piece) - len(piece.lstrip()))
            right = start + len(piece.rstrip())
            spans.append((left, right))
        start = end
    if text[start:].strip():
        piece = text[start:]
        spans.append((start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())))
    return spans


# ---- result shapes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Chunk:
    text_index: int  # which input text
    start: int  # character span in the (validated) text
    end: int
    n_tokens: int


@dataclass
class _Prepared:
    text: str
    notes: list[str] = field(default_factory=list)
    chunks: list[_Chunk] = field(default_factory=list)
    n_tokens: int = 0


def read_batch_file(data: bytes, filename: str = "texts.txt") -> list[str]:
    """Texts from an uploaded CSV (a text column) or TXT (one text per line). Size checked first."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputTooLargeError(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB."
        )
    if not data.strip():
        raise EmptyInputError("The file is empty.")
    if b"\x00" in data[:4096]:
        raise UnsupportedFormatError("This file looks binary. Please upload a UTF-8 .csv or .txt file.")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CorruptInputError(
            "The file is not valid UTF-8 text. Please save it as UTF-8 and try again."
        ) from err
    if filename.lower().endswith(".csv"):
        try:
            rows = list(csv.reader(io.StringIO(content)))
        except csv.Error as err:
            raise CorruptInputError(f"The CSV could not be read: {err}.") from err
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows:
            raise EmptyInputError("The CSV has no rows.")
        header = [cell.strip().lower() for cell in rows[0]]
        column = next((header.index(name) for name in TEXT_COLUMNS if name in header), None)
        if column is None:
            if len(header) == 1:  # a single unnamed column: every row is a text
                column, body = 0, rows
            else:
                raise UnsupportedFormatError(
                    f"The CSV needs a column named one of {', '.join(TEXT_COLUMNS)} "
                    f"(found: {', '.join(header[:8])})."
                )
        else:
            body = rows[1:]
        texts = [row[column] if column < len(row) else "" for row in body]
    else:
        texts = content.splitlines()
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise EmptyInputError("The file holds no texts.")
    if len(texts) > MAX_BATCH_TEXTS:
        raise InputTooLargeError(
            f"The file has {len(texts):,} texts; the limit is {MAX_BATCH_TEXTS:,} per batch."
        )
    return texts


def _markdown_escape(text: str) -> str:
    """Escape everything Streamlit markdown could interpret (incl. colour directives and raw HTML)."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~:$>])", r"\\\1", text).replace("\n", " ")


def attribution_markdown(text: str, words: Sequence[dict]) -> str:
    """Markdown with every word of `text` escaped and the influential ones on a coloured background.

    Green = pushes towards positive, red = towards negative; bold when strong. Safe for any user text.
    """
    peak = max((abs(w["score"]) for w in words), default=0.0) or 1.0
    out: list[str] = []
    cursor = 0
    for word in words:
        if word["start"] > cursor:
            out.append(_markdown_escape(text[cursor : word["start"]]))
        token = _markdown_escape(text[word["start"] : word["end"]])
        strength = word["score"] / peak
        if abs(strength) >= 0.15:
            colour = "green" if strength > 0 else "red"
            token = f":{colour}-background[{'**' + token + '**' if abs(strength) >= 0.5 else token}]"
        out.append(token)
        cursor = word["end"]
    out.append(_markdown_escape(text[cursor:]))
    return "".join(out)


# ---- the service ----------------------------------------------------------------------------------
class NlpService:
    """Sentiment, explanations, similarity, summaries. Immutable after construction; thread-safe."""

    def __init__(self, bundle: SentimentBundle = SST2_SENTIMENT, device: torch.device | None = None):
        started = time.perf_counter()
        self.device = device or select_device()
        self.bundle = bundle
        self.labels = tuple(bundle.labels)
        self.window = bundle.max_length - 2  # room for [CLS] and [SEP]
        self._tokenizer = bundle.get_tokenizer()
        self._tok_lock = threading.Lock()  # HF fast tokenizers must not be called concurrently
        self._classifier = load_sentiment_model(bundle, self.device)
        # full fine-tuning leaves the logits over-confident; dividing by the fitted temperature makes a
        # stated confidence match how often such answers are right (MODEL_CARD, "Calibration")
        self.temperature = bundle.get_temperature()
        # On CPU, labels come from the same weights run by ONNX Runtime (≈3× faster per sentence);
        # the PyTorch module stays for the gradients of explanations and for GPUs.
        self._onnx = (
            OnnxSentimentClassifier(self._classifier, torch.get_num_threads())
            if self.device.type == "cpu" and os.environ.get("DEMO_NLP_ONNX", "1") != "0"
            else None
        )
        self._encoder = load_encoder(self.device)
        self._cls_id = self._tokenizer.cls_token_id
        self._sep_id = self._tokenizer.sep_token_id
        self._pad_id = self._tokenizer.pad_token_id
        self.load_seconds = time.perf_counter() - started
        logger.info("nlp service ready in %.1f s on %s", self.load_seconds, self.device)

    # -- tokenisation and chunking
    def reference_model(self) -> torch.nn.Module:
        """The merged full-precision classifier, e.g. to compare with a Hugging Face pipeline."""
        return self._classifier

    def reference_tokenizer(self):
        return self._tokenizer

    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        """Word-piece ids and character offsets without special tokens and without truncation."""
        with self._tok_lock:
            enc = self._tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return enc["input_ids"], enc["offset_mapping"]

    def chunk_text(self, text: str, window: int | None = None) -> list[tuple[int, int, int]]:
        """Split `text` into (start, end, n_tokens) spans of at most `window` word pieces.

        Whole sentences are packed together; a sentence longer than the window is cut between words.
        """
        window = window or self.window
        ids, offsets = self._encode([text])
        ids, offsets = ids[0], offsets[0]
        if len(ids) <= window:
            return [(0, len(text), len(ids))] if ids else []
        # token index ranges of each sentence
        pieces: list[tuple[int, int]] = []  # (first token, last token + 1)
        token = 0
        for _, end in split_sentences(text):
            first = token
            while token < len(ids) and offsets[token][0] < end:
                token += 1
            if token > first:
                pieces.append((first, token))
        if token < len(ids):
            pieces.append((token, len(ids)))
        # cut over-long sentences at word starts (a piece whose offset follows whitespace)
        fitted: list[tuple[int, int]] = []
        for first, last in pieces:
            while last - first > window:
                cut = first + window
                while cut > first + window // 2 and not (
                    offsets[cut][0] > 0 and text[offsets[cut][0] - 1].isspace()
                ):
                    cut -= 1
                if cut <= first + window // 2:
                    cut = first + window
                fitted.append((first, cut))
                first = cut
            fitted.append((first, last))
        # greedy packing of consecutive pieces
        spans: list[tuple[int, int, int]] = []
        cur_first, cur_last = fitted[0]
        for first, last in fitted[1:]:
            if last - cur_first <= window:
                cur_last = last
            else:
                spans.append((offsets[cur_first][0], offsets[cur_last - 1][1], cur_last - cur_first))
                cur_first, cur_last = first, last
        spans.append((offsets[cur_first][0], offsets[cur_last - 1][1], cur_last - cur_first))
        return spans

    def _batch_ids(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows) + 2
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            seq = [self._cls_id, *row, self._sep_id]
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, : len(seq)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _length_batches(self, rows: Sequence[list[int]]) -> list[list[int]]:
        """Row indices grouped for forward passes, shortest first.

        On the CPU (ONNX Runtime) cost grows with every padded position, so each group holds rows of
        one length: no padding at all. On a GPU padding is nearly free and big batches win, so rows
        are cut into FORWARD_BATCH groups of similar length.
        """
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        if self._onnx is None:
            return [order[start : start + FORWARD_BATCH] for start in range(0, len(order), FORWARD_BATCH)]
        groups: list[list[int]] = []
        for index in order:
            if groups and len(rows[groups[-1][0]]) == len(rows[index]) and len(groups[-1]) < FORWARD_BATCH:
                groups[-1].append(index)
            else:
                groups.append([index])
        return groups

    def _forward_probs(self, rows: Sequence[list[int]]) -> torch.Tensor:
        """P(labels) for token-id rows (no specials), (N, C); batched by length."""
        probs = torch.zeros((len(rows), len(self.labels)))
        with inference_context(self.device):
            for idx in self._length_batches(rows):
                ids, mask = self._batch_ids([rows[i] for i in idx])
                if self._onnx is not None:
                    logits = self._onnx.logits(ids, mask)
                else:
                    logits = self._classifier(input_ids=ids, attention_mask=mask).logits
                probs[idx] = torch.softmax(logits.float() / self.temperature, dim=-1).cpu()
        return probs

    # -- sentiment
    def _prepare(self, texts: Sequence[Any]) -> list[_Prepared | InputError]:
        prepared: list[_Prepared | InputError] = []
        for raw in texts:
            try:
                text, notes = validate_text(raw)
            except InputError as err:
                prepared.append(err)
                continue
            item = _Prepared(text=text, notes=notes)
            prepared.append(item)
        return prepared

    def predict_batch(self, texts: Sequence[Any]) -> list[dict[str, Any]]:
        """Sentiment of many texts with one batched forward; bad items get {"error": message}."""
        return [
            {"error": str(item), "error_type": type(item).__name__} if isinstance(item, InputError) else item
            for item in self._classify(texts)
        ]

    def _classify(self, texts: Sequence[Any]) -> list[dict[str, Any] | InputError]:
        started = time.perf_counter()
        prepared = self._prepare(texts)
        rows: list[list[int]] = []
        owners: list[tuple[int, int, int, int]] = []  # (text index, start, end, n_tokens)
        for index, item in enumerate(prepared):
            if isinstance(item, InputError):
                continue
            ids, _ = self._encode([item.text])
            if len(ids[0]) <= self.window:
                spans = [(0, len(item.text), len(ids[0]))]
                rows.append(ids[0])
            else:
                spans = self.chunk_text(item.text)
                rows.extend(self._encode([item.text[s:e] for s, e, _ in spans])[0])
            if not any(n for _, _, n in spans):
                prepared[index] = NothingFoundError("The text has no words the model can read.")
                continue
            item.n_tokens = len(ids[0])
            owners.extend((index, s, e, n) for s, e, n in spans)
        probs = self._forward_probs(rows) if rows else torch.zeros((0, len(self.labels)))
        per_text: dict[int, list[tuple[int, int, int, torch.Tensor]]] = {}
        for (index, s, e, n), p in zip(owners, probs, strict=True):
            per_text.setdefault(index, []).append((s, e, max(n, 1), p))
        latency = (time.perf_counter() - started) * 1000 / max(1, len(texts))
        results: list[dict[str, Any] | InputError] = []
        for index, item in enumerate(prepared):
            if isinstance(item, InputError):
                results.append(item)
                continue
            parts = per_text[index]
            weights = torch.tensor([float(n) for _, _, n, _ in parts])
            mean = (torch.stack([p for *_, p in parts]) * weights[:, None]).sum(0) / weights.sum()
            best = int(mean.argmax())
            confidence = float(mean[best])
            result: dict[str, Any] = {
                "label": self.labels[best],
                "confidence": round(confidence, 4),
                "probabilities": {label: round(float(mean[i]), 4) for i, label in enumerate(self.labels)},
                "low_confidence": confidence < LOW_CONFIDENCE or bool(item.notes),
                "chunked": len(parts) > 1,
                "n_chunks": len(parts),
                "n_tokens": item.n_tokens,
                "notes": list(item.notes),
                "latency_ms": round(latency, 2),
            }
            if len(parts) > 1:
                result["notes"].append(
                    f"The text is longer than the model window ({self.window} word pieces), so it was split "
                    f"into {len(parts)} parts; the answer is the length-weighted mean of their probabilities."
                )
                result["chunks"] = [
                    {
                        "text": item.text[s:e],
                        "label": self.labels[int(p.argmax())],
                        "confidence": round(float(p.max()), 4),
                        "n_tokens": n,
                    }
                    for s, e, n, p in parts
                ]
            if confidence < LOW_CONFIDENCE:
                result["notes"].append(
                    f"Low confidence ({confidence:.0%}): the text may be mixed, neutral or unlike movie reviews."
                )
            results.append(result)
        return results

    def predict(self, text: Any) -> dict[str, Any]:
        """Sentiment of one text; raises InputError on bad input."""
        started = time.perf_counter()
        result = self._classify([text])[0]
        if isinstance(result, InputError):
            raise result
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    # -- attributions
    def explain(self, text: Any, steps: int | None = None) -> dict[str, Any]:
        """Sentiment plus integrated-gradients attribution per word (positive = towards "positive").

        f = logit(positive) - logit(negative); baseline = [PAD] embedding at every word piece
        ([CLS]/[SEP] and positions kept). Completeness: the word scores of a chunk sum to
        f(text) - f(baseline) up to the Riemann error, reported as `delta`.
        """
        started = time.perf_counter()
        result = self.predict(text)
        clean, _ = validate_text(text)
        spans = [(0, len(clean), result["n_tokens"])] if not result["chunked"] else self.chunk_text(clean)
        explained = spans[:MAX_EXPLAIN_CHUNKS]
        steps = steps or (IG_STEPS if len(spans) == 1 else IG_STEPS_LONG)
        words: list[dict[str, Any]] = []
        deltas: list[float] = []
        for s, e, _ in explained:
            chunk_words, delta = self._integrated_gradients(clean[s:e], steps)
            for w in chunk_words:
                words.append({**w, "start": w["start"] + s, "end": w["end"] + s})
            deltas.append(delta)
        result["text"] = clean
        result["words"] = words
        result["attribution"] = {
            "method": f"integrated gradients, {steps} steps, [PAD] baseline",
            "explained_chunks": len(explained),
            "total_chunks": len(spans),
            "delta": round(max(deltas, key=abs) if deltas else 0.0, 4),
        }
        if len(spans) > len(explained):
            result["notes"].append(
                f"Word highlights cover the first {len(explained)} of {len(spans)} parts of this long text."
            )
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    def _integrated_gradients(self, text: str, steps: int) -> tuple[list[dict[str, Any]], float]:
        with self._tok_lock:
            enc = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            word_ids = enc.word_ids()
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if not ids:
            return [], 0.0
        input_ids, mask = self._batch_ids([ids])  # (1, T)
        embed = self._classifier.get_input_embeddings()
        with torch.no_grad():
            actual = embed(input_ids)  # (1, T, H)
            baseline = embed(torch.full_like(input_ids, self._pad_id))
            baseline[:, 0] = actual[:, 0]  # keep [CLS]
            baseline[:, -1] = actual[:, -1]  # keep [SEP]
        alphas = (torch.arange(steps, device=self.device, dtype=actual.dtype) + 0.5) / steps  # midpoint rule
        path = baseline + alphas[:, None, None] * (actual - baseline)  # (S, T, H)
        path = path.detach().requires_grad_(True)
        pos, neg = self.labels.index("positive"), self.labels.index("negative")
        with torch.enable_grad():
            logits = self._classifier(
                inputs_embeds=path, attention_mask=mask.expand(steps, -1)
            ).logits.float()
            margin = logits[:, pos] - logits[:, neg]  # (S,)
            (grads,) = torch.autograd.grad(margin.sum(), path)
        token_scores = ((actual - baseline) * grads.mean(dim=0, keepdim=True)).sum(-1)[0, 1:-1]  # (T-2,)
        with inference_context(self.device):
            ends = self._classifier(
                inputs_embeds=torch.cat([actual, baseline]), attention_mask=mask.expand(2, -1)
            ).logits.float()
        target = float((ends[0, pos] - ends[0, neg]) - (ends[1, pos] - ends[1, neg]))
        scores = token_scores.detach().float().cpu().tolist()
        words: list[dict[str, Any]] = []
        for i, word in enumerate(word_ids):
            start, end = offsets[i]
            if words and word is not None and words[-1]["word_id"] == word:
                words[-1]["end"] = end
                words[-1]["score"] += scores[i]
            else:
                words.append({"word_id": word, "start": start, "end": end, "score": scores[i]})
        for w in words:
            w["word"] = text[w["start"] : w["end"]]
            w["score"] = round(w["score"], 4)
            del w["word_id"]
        return words, target - sum(scores)

    # -- sentence embeddings, similarity, summaries
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Base MiniLM sentence embeddings (N, 384), L2-normalised; long texts as the mean of chunk embeddings."""
        rows: list[list[int]] = []
        owner: list[tuple[int, int]] = []  # (text index, n_tokens)
        for index, text in enumerate(texts):
            spans = self.chunk_text(text, ENCODER_WINDOW - 2)
            pieces = (
                self._encode([text[s:e] for s, e, _ in spans])[0]
                if len(spans) > 1
                else self._encode([text])[0]
            )
            for piece in pieces:
                rows.append(piece[: ENCODER_WINDOW - 2])
                owner.append((index, max(1, len(piece))))
        out = torch.zeros((len(texts), self._encoder.config.hidden_size))
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        with inference_context(self.device):
            for start in range(0, len(order), FORWARD_BATCH):
                idx = order[start : start + FORWARD_BATCH]
                ids, mask = self._batch_ids([rows[i] for i in idx])
                hidden = self._encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                vectors = mean_pool(hidden, mask).cpu()
                for j, row in enumerate(idx):
                    text_index, weight = owner[row]
                    out[text_index] += weight * vectors[j]
        return torch.nn.functional.normalize(out, p=2, dim=1)

    def similarity(self, text_a: Any, text_b: Any) -> dict[str, Any]:
        """Cosine similarity of the base sentence embeddings of two texts, in [-1, 1]."""
        started = time.perf_counter()
        clean_a, notes_a = validate_text(text_a)
        clean_b, notes_b = validate_text(text_b)
        vectors = self.embed([clean_a, clean_b])
        score = float(torch.clamp(vectors[0] @ vectors[1], -1.0, 1.0))
        if clean_a == clean_b:
            score = 1.0
        if score >= 0.75:
            verdict = "very similar"
        elif score >= 0.5:
            verdict = "related"
        elif score >= 0.25:
            verdict = "loosely related"
        else:
            verdict = "unrelated"
        return {
            "similarity": round(score, 4),
            "verdict": verdict,
            "notes": sorted(set(notes_a + notes_b)),
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    def summarize(self, text: Any, n_sentences: int = 3) -> dict[str, Any]:
        """Extractive summary: the `n_sentences` most central sentences (LexRank-style PageRank over
        cosine similarities of base embeddings), verbatim and in their original order."""
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
        if len(sentences) <= n_sentences:
            scores = [1.0] * len(sentences)
            chosen = list(range(len(sentences)))
            notes.append(f"The text has only {len(sentences)} sentence(s), so all of them are returned.")
        else:
            vectors = self.embed(sentences)
            sim = (vectors @ vectors.T).clamp(min=0.0)  # (N, N)
            sim.fill_diagonal_(0.0)
            rows = sim.sum(dim=1, keepdim=True)
            transition = torch.where(
                rows > 0, sim / rows.clamp(min=1e-9), torch.full_like(sim, 1 / len(sentences))
            )
            rank = torch.full((len(sentences),), 1 / len(sentences))
            for _ in range(100):  # power iteration with damping 0.85
                updated = 0.15 / len(sentences) + 0.85 * (transition.T @ rank)
                if torch.allclose(updated, rank, atol=1e-7):
                    rank = updated
                    break
                rank = updated
            scores = (rank / rank.max()).tolist()
            chosen = sorted(sorted(range(len(sentences)), key=lambda i: -scores[i])[:n_sentences])
        return {
            "summary": [sentences[i] for i in chosen],
            "indices": chosen,
            "n_sentences": len(sentences),
            "sentences": [
                {"index": i, "text": sentence, "score": round(scores[i], 4), "selected": i in chosen}
                for i, sentence in enumerate(sentences)
            ],
            "notes": notes,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }


def _averaged_runs(weights: Path) -> int:
    """How many fine-tuning runs the checkpoint averages (its `soup_of` metadata); 1 for a single run."""
    import json

    from safetensors import safe_open

    if not weights.is_file():
        return 0
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata() or {}
    return len(json.loads(metadata.get("soup_of", "[]"))) or 1


def model_info() -> dict[str, Any]:
    """What the page's "about" box shows: the bundle and the committed evaluation figures."""
    import json

    metrics_path = PACKAGE_DIR / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    return {
        "base": "sentence-transformers/all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7 M parameters)",
        "fine_tuning": SST2_SENTIMENT.finetune.describe(),
        "averaged_runs": _averaged_runs(SST2_SENTIMENT.weights),
        "weights": SST2_SENTIMENT.weights.name,
        "window_tokens": SST2_SENTIMENT.max_length,
        "labels": list(LABELS),
        "metrics": metrics,
        "limits": {
            "max_chars": MAX_CHARS,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
            "max_batch_texts": MAX_BATCH_TEXTS,
        },
    }


_SERVICE: NlpService | None = None
_SERVICE_LOCK = threading.Lock()


def load_service() -> NlpService:
    """The shared service (weights loaded once per process)."""
    global _SERVICE
    with _SERVICE_LOCK:
        if _SERVICE is None:
            _SERVICE = NlpService()
        return _SERVICE


def example_inputs() -> dict[str, Any]:
    """The bundled examples: sentiment texts, a similarity pair, an article, a batch file."""

    def read(name: str) -> str:
        return (EXAMPLES_DIR / name).read_text(encoding="utf-8").strip()

    return {
        "sentiment": {
            "Positive review": read("positive_review.txt"),
            "Negative review": read("negative_review.txt"),
            "Mixed, long review (chunked)": read("long_review.txt"),
        },
        "similarity": tuple(read("similarity_pair.txt").split("\n\n", 1)),
        "article": read("article.txt"),
        "batch_file": EXAMPLES_DIR / "batch_reviews.csv",
    }


def self_test() -> dict[str, Any]:
    """Classify a bundled example for the home page."""
    service = load_service()
    text = example_inputs()["sentiment"]["Positive review"]
    result = service.predict(text)
    return {
        "input": f"review: “{text[:60]}…”" if len(text) > 60 else f"review: “{text}”",
        "output": f"{result['label']} ({result['confidence']:.0%})",
        "latency_ms": result["latency_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    from services.cli import read_file_bytes, run_per_input

    parser = argparse.ArgumentParser(prog="python -m services.nlp", description="Sentiment of each text.")
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--file", help="a .txt (one text per line) or .csv (a 'text' column)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    texts = list(args.texts)
    if args.file:
        try:
            texts += read_batch_file(read_file_bytes(args.file, MAX_UPLOAD_BYTES), Path(args.file).name)
        except InputError as err:
            message = str(err)

            def refuse(_: str) -> dict[str, Any]:
                raise InputError(message)

            return run_per_input([args.file], refuse, key="file")
    if not texts:
        parser.error("give at least one text or --file")
    service = load_service()

    def handle(text: str) -> dict[str, Any]:
        result = service.predict(text)
        keep = ("label", "confidence", "low_confidence", "chunked", "notes", "latency_ms")
        return {key: result[key] for key in keep}

    return run_per_input(texts, handle, key="text")


if __name__ == "__main__":
    sys.exit(main())
