"""The sentiment model at serving time: tokenisation, windows for long texts, batched probabilities.

The classifier is all-MiniLM-L6-v2 with the fine-tuned changes applied (models/nlp). On a CPU the same
weights run in ONNX Runtime, whose exported graph is cached on disk between starts
(models/nlp/onnx_cache.py); the PyTorch module stays for gradients (explanations) and for GPUs. On a
CPU with bf16 matrix units (AMX), a large batch runs the same packed layers in PyTorch with bf16 matrix
products instead: about twice the throughput, and only texts right at the decision boundary change
their answer (README, "bf16 on CPUs with matrix units").
Probabilities are softmax(logits / T) with the temperature T stored in the weights.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.nlp import SST2_SENTIMENT, OnnxSentimentClassifier, SentimentBundle, load_sentiment_model
from models.nlp.packing import PackedClassifier, packed_logits
from models.runtime import cpu_has_bf16_matrix_units, inference_context
from services.nlp.inputs import split_sentences

logger = logging.getLogger(__name__)

FORWARD_BATCH = 64  # sequences per padded forward pass (GPU)
ONNX_ENV = "DEMO_NLP_ONNX"  # "0" serves with PyTorch even on a CPU
BF16_ENV = "DEMO_NLP_BF16"  # "0" keeps every CPU pass in fp32 ONNX Runtime, even on an AMX CPU
# Word pieces from which a pass goes to bf16 PyTorch on an AMX CPU. Below it ONNX Runtime's lower
# fixed cost wins (one thread: 1 sentence 4 ms against 15 ms); at about 90 pieces (8 sentences) the two
# are even, at 400 (32 sentences with their clauses) bf16 takes half the time.
BF16_MIN_TOKENS = 96


@dataclass(frozen=True)
class Window:
    """A piece of a text that fits the model: its character span and its word-piece ids (no specials)."""

    start: int
    end: int
    ids: list[int]


@dataclass(frozen=True)
class Encoded:
    """A text's word pieces without special tokens, with the character span of each."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class SentimentClassifier:
    """Tokeniser + classifier, immutable after construction and safe to share between threads."""

    def __init__(self, bundle: SentimentBundle = SST2_SENTIMENT, device: torch.device | None = None):
        from models.runtime import select_device

        started = time.perf_counter()
        self.device = device or select_device()
        self.bundle = bundle
        self.labels = tuple(bundle.labels)
        self.window = bundle.max_length - 2  # room for [CLS] and [SEP]
        self.tokenizer = bundle.get_serving_tokenizer()
        self._tok_lock = threading.Lock()  # HF fast tokenizers must not be called concurrently
        self._model: torch.nn.Module | None = None
        self._model_lock = threading.Lock()
        # full fine-tuning leaves the logits over-confident; dividing by the fitted temperature makes a
        # stated confidence match how often such answers are right (MODEL_CARD, "Calibration")
        self.temperature = bundle.get_temperature()
        self.onnx = None
        self.onnx_source = None
        if self.device.type == "cpu" and os.environ.get(ONNX_ENV, "1") != "0":
            onnx_started = time.perf_counter()
            # A warm start reads the cached graph without building the PyTorch module (most of a cold
            # start: importing transformers' BERT and merging the fine-tuned weights); that module
            # is built on first use, for explanations, and by `warm_up()`.
            self.onnx = OnnxSentimentClassifier(
                lambda: self.model, torch.get_num_threads(), bundle.onnx_cache_key()
            )
            self.onnx_source = self.onnx.source
            logger.info(
                "ONNX graph (%s) ready in %.2f s", self.onnx_source, time.perf_counter() - onnx_started
            )
        else:
            self.model  # noqa: B018 - on a GPU every forward pass runs the PyTorch module: build it now
        self.bf16_batches = (
            self.onnx is not None and cpu_has_bf16_matrix_units() and os.environ.get(BF16_ENV, "1") != "0"
        )
        self._packed: PackedClassifier | None = None
        self.cls_id = self.tokenizer.cls_token_id
        self.sep_id = self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id
        self.load_seconds = time.perf_counter() - started

    @property
    def model(self) -> torch.nn.Module:
        """The merged PyTorch classifier (gradients for explanations; every forward pass on a GPU)."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    # built outside any caller's inference mode: weights made inside it could never
                    # take part in the gradients that explanations need
                    with torch.inference_mode(False):
                        self._model = load_sentiment_model(self.bundle, self.device)
        return self._model

    @property
    def packed_model(self) -> PackedClassifier:
        """The PyTorch module on packed rows (the layers the ONNX graph was exported from)."""
        if self._packed is None:
            model = self.model
            with self._model_lock:
                if self._packed is None:
                    self._packed = PackedClassifier(model)
        return self._packed

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    # ---- tokens ---------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Word pieces and character offsets of each text, in one tokenizer call, no truncation."""
        if not texts:
            return []
        with self._tok_lock:
            enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [
            Encoded(ids, [tuple(o) for o in offsets])
            for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
        ]

    def windows(self, text: str, encoded: Encoded, window: int | None = None) -> list[Window]:
        """`text` as pieces of at most `window` word pieces: whole sentences packed together, and a
        sentence longer than the window cut between words."""
        window = window or self.window
        ids, offsets = encoded.ids, encoded.offsets
        if len(ids) <= window:
            return [Window(0, len(text), list(ids))] if ids else []
        pieces: list[tuple[int, int]] = []  # token ranges (first, last + 1) of each sentence
        token = 0
        for _, end in split_sentences(text):
            first = token
            while token < len(ids) and offsets[token][0] < end:
                token += 1
            if token > first:
                pieces.append((first, token))
        if token < len(ids):
            pieces.append((token, len(ids)))
        fitted: list[tuple[int, int]] = []
        for first, last in pieces:
            while last - first > window:
                cut = first + window
                # a word starts where the previous character is whitespace
                while cut > first + window // 2 and not (
                    offsets[cut][0] > 0 and text[offsets[cut][0] - 1].isspace()
                ):
                    cut -= 1
                if cut <= first + window // 2:
                    cut = first + window
                fitted.append((first, cut))
                first = cut
            fitted.append((first, last))
        packed: list[tuple[int, int]] = []  # greedy packing of consecutive pieces
        cur_first, cur_last = fitted[0]
        for first, last in fitted[1:]:
            if last - cur_first <= window:
                cur_last = last
            else:
                packed.append((cur_first, cur_last))
                cur_first, cur_last = first, last
        packed.append((cur_first, cur_last))
        return [
            Window(offsets[first][0], offsets[last - 1][1], list(ids[first:last])) for first, last in packed
        ]

    def batch_ids(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """[CLS] row [SEP], padded to the longest: input_ids (B, T), attention_mask (B, T) on the device."""
        width = max(len(r) for r in rows) + 2
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            seq = [self.cls_id, *row, self.sep_id]
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, : len(seq)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _length_batches(self, rows: Sequence[list[int]]) -> list[list[int]]:
        """Row indices in FORWARD_BATCH groups of similar length, for padded passes on a GPU (where
        padding is nearly free and big batches win)."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        return [order[start : start + FORWARD_BATCH] for start in range(0, len(order), FORWARD_BATCH)]

    def logits(self, rows: Sequence[list[int]]) -> torch.Tensor:
        """Raw logits (N, C) for word-piece rows without special tokens.

        Identical rows (a review pasted twice, a sentence repeated in a batch file) are run once. On the
        CPU the rows are packed end to end without padding (models.nlp.packing), in ONNX Runtime or, for
        a large batch on an AMX CPU, in bf16 PyTorch; on a GPU they run in padded groups of similar length."""
        out = torch.zeros((len(rows), len(self.labels)))
        if not rows:
            return out
        first_of: dict[tuple[int, ...], int] = {}
        owner = [first_of.setdefault(tuple(row), i) for i, row in enumerate(rows)]
        unique = sorted(set(owner))
        unique_rows = [rows[i] for i in unique]
        if self.onnx is not None:
            sequences = [[self.cls_id, *row, self.sep_id] for row in unique_rows]
            if self.bf16_batches and sum(map(len, sequences)) >= BF16_MIN_TOKENS:
                unique_out = packed_logits(self.packed_model, sequences, torch.bfloat16)
            else:
                unique_out = self.onnx.logits(sequences).float()
        else:
            unique_out = torch.zeros((len(unique), len(self.labels)))
            with inference_context(self.device):
                for idx in self._length_batches(unique_rows):
                    ids, mask = self.batch_ids([unique_rows[i] for i in idx])
                    unique_out[idx] = self.model(input_ids=ids, attention_mask=mask).logits.float().cpu()
        position = {row_index: k for k, row_index in enumerate(unique)}
        out[:] = unique_out[[position[o] for o in owner]]
        return out

    def probabilities(self, rows: Sequence[list[int]]) -> torch.Tensor:
        """Calibrated P(label) (N, C): softmax(logits / temperature)."""
        return torch.softmax(self.logits(rows) / self.temperature, dim=-1)
