"""The compute device as the app shows it (the choice itself is made in models.runtime)."""

from __future__ import annotations

from models.runtime import describe_device, inference_context, select_device

__all__ = ["select_device", "inference_context", "describe_device", "device_badge_text"]


def device_badge_text() -> str:
    """One short line for the device badge, e.g. 'NVIDIA H200 · 139.8 GB · bf16' or 'CPU (2 threads) · fp32'."""
    info = describe_device()
    parts = [str(info["name"])]
    if info["memory_gb"]:
        parts.append(f"{info['memory_gb']} GB")
    parts.append(str(info["precision"]))
    return " · ".join(parts)
