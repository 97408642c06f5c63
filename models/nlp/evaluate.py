"""`python -m models evaluate nlp`: SST-2 dev and every test-only set, with calibration and latency.

Test-only sets are only measured here; nothing in this module feeds a choice of weights or temperature
(the temperature is fitted on validation rows carved from the training sources).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import torch

from models.nlp import SST2_SENTIMENT

logger = logging.getLogger(__name__)


def evaluate_checkpoint(
    data_dir: Path,
    weights: Path = SST2_SENTIMENT.weights,
    split: str = "dev",
    fit_temperature: bool = False,
    latency_runs: int = 100,
) -> dict:
    """Every figure of metrics.json (without the command line) for the checkpoint `weights`.

    data_dir holds GLUE SST-2 (`{split}.tsv`); the test-only sets are looked for beside it.
    """
    from models.nlp import load_sentiment_model, load_tokenizer, quantize_linear_int8, read_temperature
    from models.nlp.scoring import evaluate_model, read_sst2

    model = load_sentiment_model(replace(SST2_SENTIMENT, weights=weights))
    tokenizer = load_tokenizer()
    result: dict = {"task": "nlp", "dataset": f"GLUE SST-2 {split}"}
    if fit_temperature:
        from models.nlp import write_temperature
        from models.nlp.scoring import calibration_on
        from models.nlp.train import mixed_validation

        calibration = calibration_on(model, tokenizer, mixed_validation(data_dir.parent))
        write_temperature(weights, calibration["temperature"])
        result["calibration_fit"] = calibration
    temperature = read_temperature(weights)
    texts, labels = read_sst2(data_dir / f"{split}.tsv")
    result.update(evaluate_model(model, tokenizer, texts, labels))
    result["weights"] = weights.name
    result.update(calibration_at(model, tokenizer, texts, labels, temperature))
    result["test_sets"] = score_test_sets(model, tokenizer, data_dir.parent, temperature)
    scored = {k: v["accuracy"] for k, v in result["test_sets"].items()}
    others = [v for k, v in scored.items() if k != "sst2_dev"]
    if others:
        # unweighted, so the 11,541 airline tweets count as much as the 480 DynaSent R2 sentences
        result["test_sets_mean_accuracy"] = round(sum(others) / len(others), 4)
    if scored:
        result["test_sets_mean_accuracy_with_sst2_dev"] = round(sum(scored.values()) / len(scored), 4)
    result["training_sources"] = training_sources()
    # Dynamic int8 Linear layers: a CPU speed-up the service would take if accuracy held (it does not).
    int8_metrics = evaluate_model(quantize_linear_int8(model), tokenizer, texts, labels)
    result["accuracy_int8_cpu"] = int8_metrics["accuracy"]
    result["confusion_matrix_int8_cpu"] = int8_metrics["confusion_matrix"]
    if latency_runs:
        result.update(single_text_latency(model, tokenizer, texts[0], latency_runs))
    return result


def training_sources() -> list[dict]:
    """Each set the shipped recipe trains on: key, description, files, licence and rows drawn per epoch."""
    from models.nlp.domains import MIXED_SOURCES, SST2_TRAIN_SOURCE

    return [
        {
            "key": source.key,
            "description": source.description,
            "files": list(source.files),
            "licence": source.licence,
            "rows_per_epoch": source.per_epoch,
        }
        for source in (SST2_TRAIN_SOURCE, *MIXED_SOURCES)
    ]


def error_directions(matrix: list[list[int]]) -> dict[str, float]:
    """Which way a set's mistakes lean, from its 2x2 confusion matrix (rows = truth: negative, positive):
    two sets with the same accuracy can fail the opposite way, and a user of the demo should know which."""
    negatives, positives = sum(matrix[0]), sum(matrix[1])
    return {
        "negatives_read_positive_rate": round(matrix[0][1] / max(1, negatives), 4),
        "positives_read_negative_rate": round(matrix[1][0] / max(1, positives), 4),
    }


def score_test_sets(model, tokenizer, root: Path, temperature: float) -> dict:
    """Accuracy, ECE (at the shipped temperature and at 1) and confusion matrix on every test-only set
    present under root; sets that are absent are left out."""
    from models.nlp.domains import TEST_ONLY_SETS
    from models.nlp.scoring import expected_calibration_error, predict_logits

    scores = {}
    for test_set in TEST_ONLY_SETS:
        if not test_set.available(root):
            continue
        data = test_set.load(root)
        logits = predict_logits(model, tokenizer, data.texts)
        predicted = logits.argmax(dim=-1).tolist()
        matrix = [[0, 0], [0, 0]]
        for truth, guess in zip(data.labels, predicted, strict=True):
            matrix[truth][guess] += 1
        scores[test_set.key] = {
            "accuracy": round((matrix[0][0] + matrix[1][1]) / max(1, len(data)), 4),
            **error_directions(matrix),
            "ece": expected_calibration_error(torch.softmax(logits / temperature, -1), data.labels),
            "ece_temperature_1": expected_calibration_error(torch.softmax(logits, -1), data.labels),
            "n": len(data),
            "confusion_matrix": matrix,
            "files": list(test_set.files),
            "description": test_set.description,
            "licence": test_set.licence,
        }
        logger.info(
            "%s: %s", test_set.key, json.dumps({k: scores[test_set.key][k] for k in ("accuracy", "ece", "n")})
        )
    return scores


def calibration_at(model, tokenizer, texts: list[str], labels: list[int], temperature: float) -> dict:
    """Expected calibration error (10 bins) and log-loss at temperature 1 and at `temperature`."""
    from models.nlp.scoring import expected_calibration_error, predict_logits

    logits = predict_logits(model, tokenizer, texts)
    target = torch.tensor(labels)

    def scores(t: float) -> tuple[float, float]:
        scaled = logits / t
        ece = expected_calibration_error(torch.softmax(scaled, dim=-1), labels)
        return ece, round(float(torch.nn.functional.cross_entropy(scaled, target)), 4)

    result = {"temperature": temperature}
    result["ece_temperature_1"], result["log_loss_temperature_1"] = scores(1.0)
    result["ece"], result["log_loss"] = scores(temperature)
    return result


def single_text_latency(model, tokenizer, sentence: str, runs: int) -> dict:
    """p50/p90 of tokenise + forward for one sentence (batch of 1) after a warm-up."""
    import statistics
    import time

    from models.runtime import inference_context

    device = next(model.parameters()).device
    timings = []
    for i in range(runs + 10):
        started = time.perf_counter()
        batch = tokenizer([sentence], return_tensors="pt")
        with inference_context(device):
            model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu()
        if i >= 10:
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "latency_p50_ms": round(statistics.median(timings), 2),
        "latency_p90_ms": round(timings[int(0.9 * (len(timings) - 1))], 2),
        "latency_device": f"{device} ({torch.get_num_threads()} threads)",
    }
