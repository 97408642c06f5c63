"""`python -m services.nlp "text" ...` or `python -m services.nlp --file FILE`: one JSON line per text.

FILE is a .txt (one text per line), a .csv with a text column, or a .tsv such as the labelled test
sets (`label<TAB>sentence`). When the file has a 0/1 `label` column, a last line
`{"summary": {"n", "accuracy", "ece", ...}}` scores the service's answers against it: the same figures
as `python -m models evaluate nlp`, but through the served path (ONNX Runtime, long-text windows).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from services.base import error_entry
from services.errors import InputError
from services.nlp.inputs import CLI_MAX_FILE_BYTES, CLI_MAX_TEXTS, read_labelled_file

KEEP = ("label", "confidence", "low_confidence", "reading", "chunked", "notes", "latency_ms")
CLI_BATCH = 256  # texts per predict_batch call


def _record(result: dict[str, Any]) -> dict[str, Any]:
    record = {key: result[key] for key in KEEP if key in result}
    for key in ("sentences", "clauses"):
        if key in result:
            record[key] = [{k: part[k] for k in ("text", "label", "confidence")} for part in result[key]]
    return record


def score(results: list[dict[str, Any]], labels: list[int], names: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy and expected calibration error (10 bins) of the answered texts against 0/1 labels."""
    import torch

    from models.nlp.scoring import expected_calibration_error

    answered = [(r, y) for r, y in zip(results, labels, strict=True) if "error" not in r]
    probs = torch.tensor(
        [[next(t["score"] for t in r["top_k"] if t["label"] == n) for n in names] for r, _ in answered]
    )
    truth = [y for _, y in answered]
    correct = sum(names.index(r["label"]) == y for r, y in answered)
    return {
        "n": len(labels),
        "answered": len(answered),
        "accuracy": round(correct / max(1, len(answered)), 4),
        "ece": expected_calibration_error(probs, truth) if answered else None,
        "mixed": sum(bool(r.get("mixed")) for r, _ in answered),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.nlp", description=__doc__.split("\n\n")[0])
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument(
        "--file", help="a .txt (one text per line), .csv or .tsv (a text column, optional label)"
    )
    parser.add_argument(
        "--summary-only", action="store_true", help="print only the summary line of a labelled file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    texts = list(args.texts)
    labels = None
    if args.file:
        from services.cli import read_file_bytes

        try:
            parsed = read_labelled_file(
                read_file_bytes(args.file, CLI_MAX_FILE_BYTES),
                Path(args.file).name,
                CLI_MAX_FILE_BYTES,
                CLI_MAX_TEXTS,
            )
        except InputError as err:
            print(json.dumps({"file": args.file, **error_entry(err)}, ensure_ascii=False), flush=True)
            return 0
        if parsed.labels is not None and not texts:
            labels = parsed.labels
        texts += parsed.texts
    if not texts:
        parser.error("give at least one text or --file")
    from services.nlp.service import load_service

    service = load_service()
    results: list[dict[str, Any]] = []
    for start in range(0, len(texts), CLI_BATCH):
        batch = texts[start : start + CLI_BATCH]
        for text, result in zip(batch, service.predict_batch(batch), strict=True):
            results.append(result)
            if args.summary_only and labels is not None:
                continue
            record = {
                "text": text,
                **({"error": result["error"]} if "error" in result else _record(result)),
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
    if labels is not None:
        print(
            json.dumps({"summary": {"file": args.file, **score(results, labels, service.labels)}}), flush=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
