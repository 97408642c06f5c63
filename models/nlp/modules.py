"""The nn.Modules: the mean-pooled MiniLM classifier, its trainable form, and the plain sentence encoder."""

from __future__ import annotations

import functools

import torch
from torch import nn

from models.nlp.bundle import LABELS, FineTuneSettings, base_model_path


@functools.cache
def _mean_pooled_classifier_class():
    """Built on first use so that importing this package does not import transformers."""
    from transformers import BertModel, BertPreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class BertForMeanPooledClassification(BertPreTrainedModel):
        """BERT encoder, mean of the real tokens' last hidden states, dropout, linear head.

        Same call signature and output as `BertForSequenceClassification` (`input_ids` or
        `inputs_embeds`, `attention_mask` -> `.logits`), so the service, ONNX export, explanations and a
        Hugging Face pipeline use it unchanged.
        """

        def __init__(self, config):
            super().__init__(config)
            self.num_labels = config.num_labels
            self.bert = BertModel(config, add_pooling_layer=False)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
            self.post_init()

        def forward(
            self,
            input_ids: torch.Tensor | None = None,
            attention_mask: torch.Tensor | None = None,
            token_type_ids: torch.Tensor | None = None,
            inputs_embeds: torch.Tensor | None = None,
            labels: torch.Tensor | None = None,
            **kwargs,
        ) -> SequenceClassifierOutput:
            hidden = self.bert(
                input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                inputs_embeds=inputs_embeds,
                return_dict=True,
            ).last_hidden_state  # (B, T, H)
            if attention_mask is None:
                attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, H)
            logits = self.classifier(self.dropout(pooled))
            loss = None
            if labels is not None:
                loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return BertForMeanPooledClassification


def _pretrained_classifier(settings: FineTuneSettings, num_labels: int) -> nn.Module:
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as transformers_logging

    model_class = (
        _mean_pooled_classifier_class() if settings.pooling == "mean" else AutoModelForSequenceClassification
    )
    # The base checkpoint has a pooler and no classifier head, as expected for a new head: without this
    # transformers prints a "LOAD REPORT" table of those keys into every server log and CLI output.
    previous, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        base = model_class.from_pretrained(base_model_path(), num_labels=num_labels)
    finally:
        transformers_logging.set_verbosity(previous)
        if bars:
            transformers_logging.enable_progress_bar()
    base.config.id2label = dict(enumerate(LABELS))
    base.config.label2id = {label: i for i, label in enumerate(LABELS)}
    return base


def build_trainable_classifier(settings: FineTuneSettings, num_labels: int = len(LABELS)) -> nn.Module:
    """Pretrained MiniLM with a fresh 2-class head, its trainable parameters marked (requires_grad)."""
    model = _pretrained_classifier(settings, num_labels)
    # The 30,522 x 384 word table is 52 % of the parameters; SST-2 cannot teach it much, and
    # leaving it as shipped keeps the committed file small.
    model.get_input_embeddings().weight.requires_grad_(False)
    return model


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of every Linear layer (weights int8, activations quantised per call).

    Measured, not served: `python -m models evaluate nlp` reports its SST-2 dev accuracy beside fp32's
    (`accuracy_int8_cpu`). It loses more than the 0.5 points this project allows, so the service keeps
    the fp32 weights.
    """
    import warnings

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API still works in torch 2.14.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def load_encoder(device: torch.device | None = None) -> nn.Module:
    """The untouched base MiniLM encoder for sentence embeddings (use with `mean_pool`)."""
    from transformers import AutoModel

    from models.runtime import select_device

    device = device or select_device()
    encoder = AutoModel.from_pretrained(base_model_path())
    encoder.eval().to(device)
    for param in encoder.parameters():
        param.requires_grad_(False)
    return encoder


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens then L2-normalise: (B, T, H), (B, T) -> (B, H), as sentence-transformers does."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)  # (B, T, 1)
    summed = (last_hidden * mask).sum(dim=1)  # (B, H)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return torch.nn.functional.normalize(summed / counts, p=2, dim=1)
