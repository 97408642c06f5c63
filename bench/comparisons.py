"""Side-by-side figures: our services against the usual libraries on the same inputs.

Language: our service vs Hugging Face `pipeline("text-classification")` on the same fine-tuned model.
Recommender: our rating model vs scikit-surprise's SVD on MovieLens u1 (training time and RMSE), and
the cost curve on synthetic ratings (bench/recommend_scaling.py, `make bench-scaling`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import recommend_scaling

OUT_DIR = Path(__file__).resolve().parent
SCALING_MODES = ("reuse", "measure", "skip")


def nlp_vs_pipeline(service, sentence: str, batch: list[str], quick: bool) -> dict:
    """Our language service against Hugging Face `pipeline("text-classification")` on the same merged
    fine-tuned weights and tokenizer: one sentence (p50) and a batch of different sentences."""
    import logging

    from transformers import pipeline

    from bench.timing import latency_summary, paired, throughput_summary

    repeats = 30 if quick else 200
    # The same merged fine-tuned weights and tokenizer, served the usual Hugging Face way. The
    # pipeline logs an error for any model class outside its registry (ours is a mean-pooled BERT
    # classifier with the standard signature); it runs it all the same, so that line is muted.
    pipeline_logger = logging.getLogger("transformers.pipelines.base")
    previous_level = pipeline_logger.level
    pipeline_logger.setLevel(logging.CRITICAL)
    try:
        reference = pipeline(
            "text-classification",
            model=service.reference_model(),
            tokenizer=service.reference_tokenizer(),
            device=service.device,
        )
    finally:
        pipeline_logger.setLevel(previous_level)
    # Ours and the pipeline alternate call by call, so both see the same machine.
    ours_s, ref_s = paired(lambda: service.predict(sentence), lambda: reference(sentence), repeats, warmup=5)
    ours_single, ref_single = latency_summary(ours_s), latency_summary(ref_s)
    ours_s, ref_s = paired(
        lambda: service.predict_batch(batch), lambda: reference(batch, batch_size=32), 3 if quick else 10
    )
    ours_batch, ref_batch = throughput_summary(ours_s, len(batch)), throughput_summary(ref_s, len(batch))
    return {
        "single": ours_single,
        "batch": ours_batch,
        "unit": "sentences",
        # on a CPU with AMX a large batch runs with bf16 matrix products (services/nlp/classifier.py)
        "batch_precision": "bf16" if getattr(service.classifier, "bf16_batches", False) else "fp32",
        "pipeline_single": ref_single,
        "pipeline_batch": ref_batch,
        "single_p50_ratio_vs_pipeline": round(ours_single["p50_ms"] / ref_single["p50_ms"], 3),
        "batch_throughput_ratio_vs_pipeline": round(ours_batch["items_per_s"] / ref_batch["items_per_s"], 3),
    }


def compare_with_surprise(data_dir: Path, repeats: int = 3) -> dict:
    """Retrain the shipped rating model (trainer and hyper-parameters read from the weights' metadata)
    and Surprise's SVD on u1.base, alternately, `repeats` times each; median fit times, RMSE on u1.test."""
    import statistics

    import numpy as np

    from models.recommend import MF_MOVIELENS_100K
    from models.recommend.data import read_ratings
    from models.recommend.mf import PureSVD

    train, test = read_ratings(data_dir / "u1.base"), read_ratings(data_dir / "u1.test")

    def fit_ours():
        started = time.perf_counter()
        model = MF_MOVIELENS_100K.estimator().fit(train.users, train.items, train.ratings, 943, 1682)
        return model, time.perf_counter() - started

    ours, ours_times = None, []
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader
    except ImportError as err:
        for _ in range(repeats):
            ours, seconds = fit_ours()
            ours_times.append(seconds)
        return {
            "ours_fit_s": round(statistics.median(ours_times), 3),
            "surprise": f"not installed ({err})",
        }
    frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    svd, svd_times = None, []
    for _ in range(repeats):  # alternate, so that a busy moment on a shared machine hits both
        ours, seconds = fit_ours()
        ours_times.append(seconds)
        started = time.perf_counter()
        svd = SVD(random_state=0).fit(trainset)  # Surprise's defaults: 100 factors, 20 epochs of SGD
        svd_times.append(time.perf_counter() - started)
    ours_rmse = float(np.sqrt(np.mean((ours.predict(test.users, test.items) - test.ratings) ** 2)))
    predictions = np.array(
        [svd.predict(int(u), int(i)).est for u, i in zip(test.users, test.items, strict=True)]
    )
    svd_rmse = float(np.sqrt(np.mean((predictions - test.ratings) ** 2)))
    ours_s, svd_s = statistics.median(ours_times), statistics.median(svd_times)
    ranker = PureSVD(int(MF_MOVIELENS_100K.metadata().get("ranking_factors", 20))).fit(
        train.users, train.items, 943, 1682
    )
    return {
        "ours_model": ours.get_params(),
        "ours_fit_s": round(ours_s, 3),
        "ours_rmse": round(ours_rmse, 4),
        "surprise_svd_fit_s": round(svd_s, 3),
        "surprise_svd_rmse": round(svd_rmse, 4),
        "fit_time_ratio": round(ours_s / svd_s, 3),
        "rmse_ratio": round(ours_rmse / svd_rmse, 4),
        "repeats": repeats,
        # The top-N candidate stage ships too; Surprise has no counterpart, so it is reported, not compared.
        "ours_ranker_fit_s": round(ranker.fit_seconds_, 3),
    }


def recommender_cost_curve(quick: bool, mode: str = "reuse", out_dir: Path = OUT_DIR) -> dict | None:
    """The cost curve for bench/results.json.

    "reuse": the curve on file when it was measured for the same code, trainer settings and sizes,
    else measure it now; "measure": measure it now (--rescale); "skip": the curve on file, whatever it
    was measured for, and never measure (`make bench BENCH_SCALING=skip`); None when there is none.
    Measuring means 100 K, 1 M and 10 M ratings (--quick stops at 1 M), one process per point, each
    bounded by its time limit, which takes many minutes; `make bench-scaling` does it alone.
    """
    if mode not in SCALING_MODES:
        raise ValueError(f"scaling mode must be one of {SCALING_MODES}, not {mode!r}")
    sizes = recommend_scaling.SIZES[:2] if quick else recommend_scaling.SIZES
    previous = recommend_scaling.read_curve(out_dir)
    if mode == "skip":
        if previous is None:
            return None
        print(
            "bench: recommender cost curve not measured (BENCH_SCALING=skip); the last one is kept",
            file=sys.stderr,
        )
        return {**previous, "reused": True}
    if mode == "reuse" and previous is not None and previous.get("key") == recommend_scaling.curve_key(sizes):
        print(
            "bench: recommender cost curve unchanged since its last measurement (--rescale redoes it)",
            file=sys.stderr,
        )
        return {**previous, "reused": True}
    curve = recommend_scaling.measure(sizes, log=sys.stderr)
    recommend_scaling.write_outputs(curve, out_dir)
    return curve
