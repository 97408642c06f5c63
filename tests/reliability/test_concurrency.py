"""8 threads × 50 mixed requests against the shared services (as Streamlit sessions share a
st.cache_resource): no errors, answers identical to a serial run, and no state changed by serving."""

from __future__ import annotations

import hashlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from services import nlp, recommend, speech, vision

THREADS = 8
REQUESTS_PER_THREAD = 50
TIMING_KEYS = {"latency_ms", "forward_ms", "preprocess_ms", "elapsed_ms", "load_ms"}


def without_timings(value):
    """Drop wall-clock fields, which differ run to run by nature."""
    if isinstance(value, dict):
        return {
            k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS and not k.endswith("_ms")
        }
    if isinstance(value, list | tuple):
        return [without_timings(v) for v in value]
    return value


def request_mix() -> list[tuple[str, object]]:
    images = [Path(example["path"]).read_bytes() for example in vision.example_inputs()]
    clips = [Path(example["path"]).read_bytes() for example in speech.example_inputs()]
    sentences = [
        "A gorgeous, moving film with a superb cast.",
        "Dull, predictable and far too long.",
        "not bad at all",
        "",  # bad input belongs in the mix too: it must fail the same way under load
    ]
    rate_requests = ["50:5,181:5,1:4", "313:5,300:1", "99999:5"]
    mix: list[tuple[str, object]] = []
    rng = random.Random(0)
    for i in range(THREADS * REQUESTS_PER_THREAD):
        kind = ("vision", "speech", "nlp", "user", "rate")[i % 5]
        pool = {
            "vision": images,
            "speech": clips,
            "nlp": sentences,
            "user": [1, 42, 943, 10**6],
            "rate": rate_requests,
        }
        mix.append((kind, rng.choice(pool[kind])))
    return mix


def serve(request: tuple[str, object]):
    kind, payload = request
    try:
        if kind == "vision":
            return vision.load_service().predict(payload)
        if kind == "speech":
            return speech.load_service().predict(payload)
        if kind == "nlp":
            return nlp.load_service().predict(payload)
        if kind == "user":
            return recommend.load_service().recommend_for_user(payload, k=10)
        return recommend.load_service().recommend(payload, k=10)
    except ValueError as err:  # InputError: part of the expected answer
        return {"error": type(err).__name__, "message": str(err)}


def parameters_fingerprint() -> str:
    digest = hashlib.sha256()
    for module in (vision, speech, nlp, recommend):
        service = module.load_service()
        for name, value in sorted(vars(service).items()):
            if isinstance(value, torch.nn.Module):
                for key, tensor in value.state_dict().items():
                    digest.update(f"{name}.{key}".encode())
                    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            elif isinstance(value, torch.Tensor):
                digest.update(value.detach().cpu().contiguous().numpy().tobytes())
            elif isinstance(value, np.ndarray):
                digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_concurrent_requests_match_serial_run(capsys):
    mix = request_mix()
    for request in mix[:10]:  # warm-up: load every model before the clock starts
        serve(request)
    before = parameters_fingerprint()

    started = time.perf_counter()
    serial = [without_timings(serve(request)) for request in mix]
    serial_s = time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        concurrent = [without_timings(result) for result in pool.map(serve, mix)]
    concurrent_s = time.perf_counter() - started

    mismatches = [i for i, (a, b) in enumerate(zip(serial, concurrent, strict=True)) if a != b]
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mix[mismatches[0]][0]}"
    assert parameters_fingerprint() == before, "serving requests changed a shared model"
    errors = sum(1 for result in concurrent if isinstance(result, dict) and "error" in result)
    with capsys.disabled():
        print(
            f"\nconcurrency: {THREADS} threads x {REQUESTS_PER_THREAD} = {len(mix)} mixed requests, "
            f"0 mismatches vs serial, {errors} expected input errors, "
            f"serial {serial_s:.1f} s, concurrent {concurrent_s:.1f} s"
        )
