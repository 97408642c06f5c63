"""The compute device as the app shows it (the choice itself is made in models.runtime)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["device_badge_text", "device_summary"]


def device_badge_text() -> str:
    """One short technical line, e.g. 'NVIDIA H200 · 139.8 GB · bf16' or 'CPU (2 threads) · fp32'."""
    from models.runtime import describe_device

    info = describe_device()
    parts = [str(info["name"])]
    if info["memory_gb"]:
        parts.append(f"{info['memory_gb']} GB")
    parts.append(str(info["precision"]))
    return " · ".join(parts)


def device_summary() -> dict[str, Any]:
    """{"kind": "CPU" | "GPU", "name", "details"} for the badge, without importing torch first.

    torch takes seconds to import; the home page must show before that. Until some model has
    imported torch, the kind is inferred from DEMO_DEVICE and the presence of an NVIDIA driver, and
    the details say so; afterwards they are torch's own description.
    """
    if "torch" in sys.modules and "models.runtime" in sys.modules:
        from models.runtime import describe_device

        info = describe_device()
        kind = "GPU" if info["type"] in ("cuda", "mps") else "CPU"
        return {"kind": kind, "name": str(info["name"]), "details": device_badge_text()}
    requested = os.environ.get("DEMO_DEVICE", "").strip().lower()
    has_driver = Path("/proc/driver/nvidia/version").exists()
    kind = "GPU" if (requested.startswith("cuda") or (not requested and has_driver)) else "CPU"
    return {"kind": kind, "name": kind, "details": "models are still loading; details follow"}


def __getattr__(name: str) -> Any:
    # select_device, inference_context and describe_device live in models.runtime (which imports
    # torch); they are re-exported lazily so that importing this module stays cheap.
    if name in ("select_device", "inference_context", "describe_device"):
        from models import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
