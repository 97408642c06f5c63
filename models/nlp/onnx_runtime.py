"""The serving runtime: the merged classifier exported to ONNX and run by ONNX Runtime on packed rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from models.nlp.bundle import LABELS
from models.nlp.packing import INPUT_NAMES as PACKED_INPUTS
from models.nlp.packing import PackedClassifier, pack_sequences, pooling_of, run_packed


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
        return run_packed(
            sequences,
            self.pooling,
            lambda batch: torch.from_numpy(self._session.run(["logits"], batch.feed())[0]),
            len(LABELS),
        )
