"""Whole multi-paragraph reviews: the served readings against the held-out labels.

`python -m bench.nlp_long_texts [--data-dir ../shared/data]` reads the validation rows of the whole Amazon
reviews (Blitzer et al. 2007) that the shipped language recipe carved out and never trained on, and
reports: the service's whole-text label (sentence-aligned windows, length-weighted mean), the model on
the first and last 63 word pieces (how the reviews were trained on), and how often the parts reading is
`mixed`. Writes bench/nlp_long_texts.json. Validation rows only: no test-only set is read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent / "nlp_long_texts.json"


def measure(data_root: Path) -> dict:
    from models.nlp import SST2_SENTIMENT, load_sentiment_model, load_tokenizer
    from models.nlp.scoring import head_and_tail, logits_of_ids
    from models.nlp.train import MixedConfig, mixed_validation
    from services.nlp.service import load_service

    reviews = mixed_validation(data_root)["amazon_reviews"]
    service = load_service()
    results = service.predict_batch(reviews.texts)
    names = service.labels
    served = [names.index(r["label"]) for r in results]
    tokenizer = load_tokenizer()
    model = load_sentiment_model(SST2_SENTIMENT, torch.device("cpu"))
    budget = MixedConfig().long_text_tokens
    encoded = [head_and_tail(ids, budget) for ids in tokenizer(reviews.texts)["input_ids"]]
    head_tail = logits_of_ids(model, tokenizer, encoded).argmax(-1).tolist()
    truth = reviews.labels
    not_mixed = [(p, y) for p, y, r in zip(served, truth, results, strict=True) if not r.get("mixed")]
    return {
        "reviews": len(truth),
        "longer_than_one_window": sum(bool(r.get("chunked")) for r in results),
        "served_whole_text_accuracy": round(
            sum(p == y for p, y in zip(served, truth, strict=True)) / len(truth), 4
        ),
        "head_and_tail_accuracy": round(
            sum(p == y for p, y in zip(head_tail, truth, strict=True)) / len(truth), 4
        ),
        "read_as_mixed": sum(bool(r.get("mixed")) for r in results),
        "served_accuracy_when_not_mixed": round(
            sum(p == y for p, y in not_mixed) / max(1, len(not_mixed)), 4
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.nlp_long_texts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args(argv)
    result = {"command": "python -m bench.nlp_long_texts", **measure(Path(args.data_dir))}
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
