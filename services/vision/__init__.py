"""Digit and number recognition: `load_service()` gives the one VisionService of the process.

    python -m services.vision FILE [FILE ...]     one JSON line per file (see services/vision/__main__.py)

Bad input raises a subclass of services.errors.InputError (limits: MAX_UPLOAD_BYTES, MAX_PIXELS,
MAX_DIGITS, MAX_BATCH). `example_inputs()` lists the bundled example images for the pages.
"""

from services.image_io import FORMAT_NAMES, MAX_PIXELS, MAX_UPLOAD_BYTES, UPLOAD_EXTENSIONS, preview_rgb
from services.vision.service import (
    LOW_CONFIDENCE_BELOW,
    MAX_BATCH,
    MAX_DIGITS,
    TOP_K,
    VisionService,
    best_strings,
    example_inputs,
    load_service,
)

__all__ = [
    "FORMAT_NAMES",
    "LOW_CONFIDENCE_BELOW",
    "MAX_BATCH",
    "MAX_DIGITS",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "TOP_K",
    "UPLOAD_EXTENSIONS",
    "VisionService",
    "best_strings",
    "example_inputs",
    "load_service",
    "preview_rgb",
]
