"""`python -m services.vision FILE [FILE ...]`: one JSON line per file.

{"file", "label", "confidence", "low_confidence", "top_k", "digits": [{"label", "confidence",
 "box"}], "latency_ms"[, "notes"]}   or   {"file", "error"}
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from services.cli import read_file_bytes, run_per_input
from services.vision.service import MAX_UPLOAD_BYTES, TOP_K, VisionService, load_service


def predict_file(service: VisionService, path: str, top_k: int = TOP_K) -> dict[str, Any]:
    """A path on disk → the CLI's fields; the latency includes reading the file."""
    started = time.perf_counter()
    result = service.predict(read_file_bytes(path, MAX_UPLOAD_BYTES), top_k=top_k)
    record = {k: result[k] for k in ("label", "confidence", "low_confidence", "top_k")}
    record["digits"] = [{k: d[k] for k in ("label", "confidence", "box")} for d in result["digits"]]
    record["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if result["notes"]:
        record["notes"] = result["notes"]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.vision",
        description="Read the number (one or more digits) in each image file; one JSON line each.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--top-k", type=int, default=TOP_K)
    args = parser.parse_args(argv)
    service = load_service()
    return run_per_input(args.files, lambda path: predict_file(service, path, top_k=args.top_k))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(main())
