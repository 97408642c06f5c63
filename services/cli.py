"""Shared shape of the service CLIs: one JSON object per input per line, errors included."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from services.base import error_entry
from services.errors import InputError


def run_per_input(
    inputs: Iterable[str],
    handle: Callable[[str], dict[str, Any]],
    key: str = "file",
    stream=None,
) -> int:
    """Call `handle` on each input and print one JSON line each.

    An `InputError` becomes `{"<key>": ..., "error": {"type", "message"}}`, the shape of a bad item in
    `predict_batch` and in the REST API; the exit code stays 0 because the input was handled. Any
    other exception is a bug and propagates.
    """
    stream = stream or sys.stdout
    for item in inputs:
        started = time.perf_counter()
        try:
            record = {key: item, **handle(item)}
        except InputError as err:
            record = {key: item, **error_entry(err)}
        record.setdefault("latency_ms", round((time.perf_counter() - started) * 1000, 2))
        print(json.dumps(record, ensure_ascii=False), file=stream, flush=True)
    return 0


def read_file_bytes(path: str, max_bytes: int) -> bytes:
    """Read a file given on the command line with a size guard; missing files are input errors."""
    from services.errors import EmptyInputError, InputTooLargeError

    file = Path(path)
    if not file.is_file():
        raise InputError(f"no such file: {path}")
    size = file.stat().st_size
    if size == 0:
        raise EmptyInputError("the file is empty (0 bytes)")
    if size > max_bytes:
        raise InputTooLargeError(f"the file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    return file.read_bytes()
