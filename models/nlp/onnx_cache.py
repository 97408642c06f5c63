"""The exported ONNX graph of the sentiment classifier, kept on disk between starts.

Exporting the merged classifier to ONNX took most of the language model's cold load (several seconds
on two cores). The graph depends only on the shipped fine-tuned weights, the base encoder and the
export settings, so it is written once to a user cache folder under a name made of their hash and read
back on the next start. A file that is missing, truncated, altered or unreadable is rebuilt.

Folder: $DEMO_CACHE_DIR if set, else $XDG_CACHE_HOME/multitask-ai-demo, else
~/.cache/multitask-ai-demo. Nothing is written when the folder cannot be created (read-only home):
the graph is then exported in memory as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_ENV = "DEMO_CACHE_DIR"
APP_FOLDER = "multitask-ai-demo"
# Bump when the export itself changes (opset, input names, exporter), so old graphs are not reused.
EXPORT_VERSION = "sentiment-onnx-v2-packed-opset17"


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / APP_FOLDER


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def graph_key(weights: Path, base_files: list[Path], extra: str = "") -> str:
    """Hash of what the exported graph is a function of: the fine-tuned weights, the base encoder's
    files, the export settings and the torch version (its exporter writes the graph)."""
    import torch

    digest = hashlib.sha256()
    for path in [weights, *base_files]:
        digest.update(file_sha256(path).encode())
    digest.update(f"{EXPORT_VERSION}|torch {torch.__version__}|{extra}".encode())
    return digest.hexdigest()[:32]


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a reader never sees half a graph."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_graph(key: str, export: Callable[[], bytes], check: Callable[[bytes], bool]) -> tuple[bytes, str]:
    """The graph bytes for `key` and where they came from: "cache", "rebuilt" (a bad file was replaced),
    "exported" (first time) or "memory" (the folder is not writable).

    A cached file is used only when its recorded sha256 matches and `check(bytes)` (load it and compare
    its output with the PyTorch model) passes; otherwise it is exported again and overwritten.
    """
    folder = cache_dir()
    graph, digest_file = folder / f"{key}.onnx", folder / f"{key}.onnx.sha256"
    had_file = graph.is_file()
    if had_file:
        try:
            data = graph.read_bytes()
            recorded = digest_file.read_text().strip() if digest_file.is_file() else ""
            if recorded == hashlib.sha256(data).hexdigest() and check(data):
                return data, "cache"
            logger.warning("cached ONNX graph %s failed its check; rebuilding it", graph)
        except Exception as err:  # noqa: BLE001 - any unreadable cache file is simply rebuilt
            logger.warning("cached ONNX graph %s unreadable (%s); rebuilding it", graph, err)
    data = export()
    try:
        _write_atomically(graph, data)
        _write_atomically(digest_file, hashlib.sha256(data).hexdigest().encode())
    except OSError as err:
        logger.warning("could not cache the ONNX graph in %s (%s); using it from memory", folder, err)
        return data, "memory"
    return data, "rebuilt" if had_file else "exported"


def _reference_file(key: str) -> Path:
    return cache_dir() / f"{key}.onnx.reference.json"


def read_reference(key: str) -> list | None:
    """The outputs the PyTorch model gave on the check input when graph `key` was exported, if recorded.

    With them a cached graph is checked without building the PyTorch model, which is what makes a
    warm start fast; a missing or unreadable record only means the model is built for the check.
    """
    try:
        return json.loads(_reference_file(key).read_text())["logits"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_reference(key: str, logits: list) -> None:
    try:
        _write_atomically(_reference_file(key), json.dumps({"logits": logits}).encode())
    except OSError as err:
        logger.warning("could not record the ONNX graph's reference outputs (%s)", err)
