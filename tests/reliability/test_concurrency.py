"""8 threads × 50 mixed requests against the shared services (as Streamlit sessions share a
st.cache_resource): no errors, answers identical to a serial run, and no state changed by serving."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from services import registry, speech, vision
from services.errors import InputError
from services.recommend import parse_ratings

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


SERVED_BY: dict[str, set[int]] = {}  # task → ids of the service instances that answered
INSTANCES: dict[int, object] = {}


def serve(request: tuple[str, object]):
    kind, payload = request
    task = {"user": "recommend", "rate": "recommend"}.get(kind, kind)
    service = registry.load(task)
    SERVED_BY.setdefault(task, set()).add(id(service))
    INSTANCES[id(service)] = service
    try:
        if kind == "user":
            return service.predict({"user": payload, "k": 10})
        if kind == "rate":
            return service.predict({"ratings": parse_ratings(payload), "k": 10})
        return service.predict(payload)
    except InputError as err:  # part of the expected answer
        return {"error": type(err).__name__, "message": str(err)}


# Objects of these packages are walked into; anything else (tokenizers, ONNX sessions, locks) is not.
PROJECT_PACKAGES = ("services", "models")


def parameters_fingerprint(instances) -> str:
    """A hash of every tensor and array reachable from the given service instances.

    It walks their attributes, into nested objects of this project (e.g. the language service's
    `classifier` and `embedder`), dataclasses, dicts, lists and tuples, and into every submodule of a
    torch module (its state_dict, plus tensors kept as plain attributes). Lazily built modules count
    once built, so callers build them first (`warm_up()`)."""
    digest = hashlib.sha256()
    seen: set[int] = set()

    def add(path: str, array) -> None:
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().contiguous()
            shape, dtype = tuple(array.shape), str(array.dtype)
            data = array.reshape(-1).view(torch.uint8).numpy() if array.numel() else b""
        else:
            array = np.ascontiguousarray(array)
            shape, dtype, data = array.shape, str(array.dtype), array.view(np.uint8)
        digest.update(f"{path}:{dtype}:{shape}".encode())
        digest.update(bytes(data))

    def visit(value, path: str) -> None:
        if isinstance(value, torch.Tensor | np.ndarray):
            add(path, value)
            return
        if id(value) in seen:
            return
        if isinstance(value, torch.nn.Module):
            seen.add(id(value))
            for key, tensor in value.state_dict(keep_vars=True).items():
                add(f"{path}.{key}", tensor)
            for name, submodule in value.named_modules():
                for attr, item in sorted(vars(submodule).items()):
                    if not attr.startswith("_") and isinstance(item, torch.Tensor | np.ndarray):
                        add(f"{path}.{name}.{attr}", item)
        elif isinstance(value, dict):
            seen.add(id(value))
            for key, item in sorted(value.items(), key=lambda pair: repr(pair[0])):
                visit(item, f"{path}[{key!r}]")
        elif isinstance(value, list | tuple):
            seen.add(id(value))
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]")
        elif type(value).__module__.split(".")[0] in PROJECT_PACKAGES:
            seen.add(id(value))
            if dataclasses.is_dataclass(value):
                fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
            else:
                fields = vars(value) if hasattr(value, "__dict__") else {}
            for name, item in sorted(fields.items()):
                visit(item, f"{path}.{name}")

    for service in instances:
        visit(service, type(service).__name__)
    return digest.hexdigest()


@pytest.mark.slow
def test_concurrent_requests_match_serial_run(capsys):
    mix = request_mix()
    for request in mix[:10]:  # warm-up: load every model before the clock starts
        serve(request)
    warm_instances = [INSTANCES[i] for ids in SERVED_BY.values() for i in ids]
    assert {task for task in SERVED_BY} == {"vision", "speech", "nlp", "recommend"}
    for service in warm_instances:  # lazily built modules (the language model's) exist from here on
        service.warm_up()
    before = parameters_fingerprint(warm_instances)

    started = time.perf_counter()
    serial = [without_timings(serve(request)) for request in mix]
    serial_s = time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        concurrent = [without_timings(result) for result in pool.map(serve, mix)]
    concurrent_s = time.perf_counter() - started

    mismatches = [i for i, (a, b) in enumerate(zip(serial, concurrent, strict=True)) if a != b]
    assert not mismatches, f"{len(mismatches)} answers differ, first: {mix[mismatches[0]][0]}"
    # One instance per task answered every request, and it is the one whose weights were hashed.
    assert all(len(ids) == 1 for ids in SERVED_BY.values()), {t: len(ids) for t, ids in SERVED_BY.items()}
    served = [INSTANCES[i] for ids in SERVED_BY.values() for i in ids]
    assert [id(s) for s in served] == [id(s) for s in warm_instances]
    assert parameters_fingerprint(served) == before, "serving requests changed a shared model"
    errors = sum(1 for result in concurrent if isinstance(result, dict) and "error" in result)
    with capsys.disabled():
        print(
            f"\nconcurrency: {THREADS} threads x {REQUESTS_PER_THREAD} = {len(mix)} mixed requests, "
            f"0 mismatches vs serial, {errors} expected input errors, "
            f"serial {serial_s:.1f} s, concurrent {concurrent_s:.1f} s"
        )


def test_fingerprint_notices_a_changed_weight():
    """The check above can fail: changing one weight of the served instance changes the hash."""
    service = registry.load("vision")
    module = next(v for v in vars(service).values() if isinstance(v, torch.nn.Module))
    _changed_weight_is_noticed(service, next(module.parameters()))


def _changed_weight_is_noticed(service, parameter: torch.Tensor) -> None:
    before = parameters_fingerprint([service])
    original = parameter.detach().clone()
    with torch.no_grad():
        parameter.view(-1)[0] += 1.0
        try:
            assert parameters_fingerprint([service]) != before, "a changed weight went unnoticed"
        finally:
            parameter.copy_(original)
    assert parameters_fingerprint([service]) == before


@pytest.mark.slow
def test_fingerprint_notices_a_changed_language_weight():
    """The language model sits two objects down (service.classifier.model, an encoder layer inside it):
    a fingerprint of the service's top-level attributes alone never saw it."""
    service = registry.load("nlp")
    service.warm_up()
    name, parameter = next(
        (name, p) for name, p in service.classifier.model.named_parameters() if ".layer." in name
    )
    assert "." in name  # a nested submodule's weight, not a top-level one
    _changed_weight_is_noticed(service, parameter)
