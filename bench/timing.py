"""Small, honest timers: warm-up first, then wall-clock percentiles over repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def latency_ms(call: Callable[[], object], repeats: int, warmup: int = 5) -> dict[str, float]:
    """p50/p95/mean in milliseconds of `call()` after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(percentile(samples, 95), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "n": repeats,
    }


def throughput(
    call: Callable[[], object], items_per_call: int, repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Items per second of a batched `call()` (median over repeats, after warm-up)."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    median_s = statistics.median(seconds)
    return {
        "items_per_s": round(items_per_call / median_s, 2),
        "batch": items_per_call,
        "median_batch_ms": round(median_s * 1000, 2),
    }


def paired(
    ours: Callable[[], object], reference: Callable[[], object], repeats: int, warmup: int = 2
) -> tuple[list[float], list[float]]:
    """Seconds per call of two calls measured alternately (A, B, A, B …), so that a change in the
    machine's load during the run affects both sides alike and their ratio stays meaningful."""
    for _ in range(warmup):
        ours()
        reference()
    ours_s, reference_s = [], []
    for _ in range(repeats):
        for call, samples in ((ours, ours_s), (reference, reference_s)):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
    return ours_s, reference_s


def latency_summary(seconds: list[float]) -> dict[str, float]:
    samples = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(percentile(samples, 95), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "n": len(samples),
    }


def throughput_summary(seconds: list[float], items_per_call: int) -> dict[str, float]:
    median_s = statistics.median(seconds)
    return {
        "items_per_s": round(items_per_call / median_s, 2),
        "batch": items_per_call,
        "median_batch_ms": round(median_s * 1000, 2),
    }
