"""Language service: sentiment (with mixed opinions and word highlights), similarity, summaries.

    load_service()              the one NlpService of the process (services.base.cached_loader)
    python -m services.nlp      sentiment of texts or of a file, one JSON line each (services/nlp/__main__.py)

The package is cut by concern: `inputs` (checks, sentence and clause splitting, batch files, limits),
`classifier` (tokens, windows, the model and its ONNX runtime), `explain` (integrated gradients),
`embeddings` (similarity and summaries) and `service` (the contract). Bad input raises a subclass of
services.errors.InputError with a message fit for the user.
"""

from services.nlp.inputs import (
    CLI_MAX_FILE_BYTES,
    CLI_MAX_TEXTS,
    MAX_BATCH_TEXTS,
    MAX_CHARS,
    MAX_READINGS,
    MAX_SUMMARY_SENTENCES,
    MAX_UPLOAD_BYTES,
    TextFile,
    opinion_units,
    read_batch_file,
    read_labelled_file,
    split_clauses,
    split_sentences,
    validate_text,
)
from services.nlp.service import (
    LOW_CONFIDENCE,
    MIXED_MIN_CONFIDENCE,
    NlpService,
    example_inputs,
    is_mixed,
    load_service,
)

__all__ = [
    "CLI_MAX_FILE_BYTES",
    "CLI_MAX_TEXTS",
    "LOW_CONFIDENCE",
    "MAX_BATCH_TEXTS",
    "MAX_CHARS",
    "MAX_READINGS",
    "MAX_SUMMARY_SENTENCES",
    "MAX_UPLOAD_BYTES",
    "MIXED_MIN_CONFIDENCE",
    "NlpService",
    "TextFile",
    "example_inputs",
    "is_mixed",
    "load_service",
    "opinion_units",
    "read_batch_file",
    "read_labelled_file",
    "split_clauses",
    "split_sentences",
    "validate_text",
]
