"""The base model's WordPiece tokenizer read straight from its `tokenizer.json` by the Rust `tokenizers`
library, for serving.

`transformers.AutoTokenizer` gives the same ids and offsets, but importing it pulls in most of
transformers (seconds of a cold start on two cores); `tokenizers` imports in tens of milliseconds. The
serving path needs only what this class offers: ids and character offsets of many texts in one call,
and the ids of the special tokens. Training and evaluation keep `load_tokenizer()` (tests check that
both give the same ids and offsets).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class ServingTokenizer:
    """Callable like a Hugging Face fast tokenizer for the subset the service uses; thread-safe."""

    def __init__(self, tokenizer_json: Path):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_json))
        # The file ships with 128-token truncation and fixed padding for sentence-transformers; the
        # service cuts long texts into windows itself and pads per batch.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # a Rust tokenizer must not be called from two threads at once
        self.cls_token_id = self._special_id("[CLS]")
        self.sep_token_id = self._special_id("[SEP]")
        self.pad_token_id = self._special_id("[PAD]")

    def _special_id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"the tokenizer has no {token} token")
        return token_id

    def __call__(
        self,
        texts: str | Sequence[str],
        add_special_tokens: bool = True,
        return_offsets_mapping: bool = False,
    ) -> dict[str, Any]:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        with self._lock:
            encodings = self._tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)
        out = Encodings(encodings, single)
        out["input_ids"] = [e.ids for e in encodings]
        if return_offsets_mapping:
            out["offset_mapping"] = [list(e.offsets) for e in encodings]
        if single:
            for key, value in out.items():
                out[key] = value[0]
        return out


class Encodings(dict):
    """The ids (and offsets) by key, plus `word_ids()`, as in a Hugging Face `BatchEncoding`."""

    def __init__(self, encodings: list[Any], single: bool):
        super().__init__()
        self._encodings = encodings
        self._single = single

    def word_ids(self, index: int = 0) -> list[int | None]:
        """The word each token belongs to (None for special tokens)."""
        return list(self._encodings[index].word_ids)
