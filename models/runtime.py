"""Runtime choices made once for the whole project: device, autocast dtype, seeding, threads.

Training CLIs (models/) and inference services (services/) both read the device from here, so the
app, the CLIs and the benchmarks always agree on where tensors live.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Set DEMO_DEVICE=cpu (or cuda, cuda:1, mps) to override the automatic choice.
DEVICE_ENV_VAR = "DEMO_DEVICE"


@functools.lru_cache(maxsize=1)
def select_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU; DEMO_DEVICE overrides."""
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip().lower()
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            logger.warning("%s=%s but CUDA is not available; using CPU", DEVICE_ENV_VAR, requested)
            device = torch.device("cpu")
        elif device.type == "mps" and not torch.backends.mps.is_available():
            logger.warning("%s=%s but MPS is not available; using CPU", DEVICE_ENV_VAR, requested)
            device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    logger.info("compute device: %s", device)
    return device


# Set DEMO_TORCH_THREADS to choose the CPU threads used per inference call.
THREADS_ENV_VAR = "DEMO_TORCH_THREADS"


def configure_inference_threads() -> int:
    """CPU threads for serving: half the cores by default (at least one).

    A Streamlit server answers several sessions at once, each call on its own thread; when every call
    also fans out over all cores, the calls wait on each other (on a 2-core machine a 10 ms sentence
    took 500+ ms with two intra-op threads under load). Half the cores keeps one call fast and leaves
    room for the others. Training CLIs set their own thread count.
    """
    requested = os.environ.get(THREADS_ENV_VAR, "").strip()
    threads = (
        int(requested) if requested.isdigit() and int(requested) > 0 else max(1, (os.cpu_count() or 2) // 2)
    )
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA cards that support it, else fp16 on CUDA; no autocast on CPU/MPS.

    CPU autocast to bf16 is slower than fp32 on most x86 cores without AMX and costs accuracy,
    so the CPU path stays in fp32.
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@functools.lru_cache(maxsize=1)
def cpu_has_bf16_matrix_units() -> bool:
    """True on x86 CPUs with AMX bf16 tiles (Intel Sapphire Rapids and later).

    There a bf16 matrix product runs at about twice the fp32 speed, so large CPU batches may use it
    (services.nlp.classifier); elsewhere bf16 is emulated and slower, and the CPU stays in fp32.
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    return bool(capabilities is not None and capabilities().get("amx_bf16", False))


@contextlib.contextmanager
def inference_context(device: torch.device | None = None):
    """`torch.inference_mode` plus mixed-precision autocast where the device benefits from it."""
    device = device or select_device()
    dtype = autocast_dtype(device)
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so training runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def describe_device(device: torch.device | None = None) -> dict[str, str | float | None]:
    """A plain description for badges and benchmark reports."""
    device = device or select_device()
    info: dict[str, str | float | None] = {"type": device.type, "name": "CPU", "memory_gb": None}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["name"] = props.name
        info["memory_gb"] = round(props.total_memory / 1024**3, 1)
    elif device.type == "mps":
        info["name"] = "Apple GPU (MPS)"
    else:
        threads = torch.get_num_threads()
        info["name"] = f"CPU ({threads} thread{'' if threads == 1 else 's'})"
    precision = autocast_dtype(device)
    info["precision"] = "fp32" if precision is None else str(precision).removeprefix("torch.")
    return info
