"""The catalogue of hostile and unusual inputs, built in memory for every upload and text path."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw


def _png_bytes(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def digit_image(mode: str = "L") -> Image.Image:
    """A plain dark '7' on white paper, converted to the requested mode."""
    image = Image.new("L", (96, 96), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(25, 22), (72, 22), (40, 78)], fill=0, width=9)
    return image.convert(mode) if mode != "L" else image


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a huge size, followed by a tiny IDAT: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def image_cases() -> dict[str, tuple[bytes, str]]:
    """name → (bytes, expectation) with expectation 'error' (typed InputError) or 'ok' (a prediction)."""
    good_png = _png_bytes(digit_image())
    cmyk = io.BytesIO()
    digit_image("CMYK").save(cmyk, format="JPEG")
    # Full 16-bit range (0–65535), as a scanner or a raw converter writes it.
    sixteen = Image.fromarray((np.asarray(digit_image(), dtype=np.uint16) * 257).astype(np.uint16))
    palette = digit_image("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    frames = [digit_image("RGB"), Image.new("RGB", (96, 96), "white")]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return {
        "zero-byte": (b"", "error"),
        "truncated PNG": (good_png[: len(good_png) // 2], "error"),
        "text named .png": (b"hello, this is not an image at all\n" * 20, "error"),
        "HTML named .jpg": (b"<html><script>alert(1)</script></html>", "error"),
        "oversized (30 MB)": (b"\x89PNG\r\n\x1a\n" + b"\x00" * (30 * 1024 * 1024), "error"),
        "PNG header claiming 30000x30000": (png_header_claiming(30_000, 30_000), "error"),
        "PNG 1x1": (_png_bytes(Image.new("L", (1, 1), 0)), "error"),
        "PNG 1x20000 strip": (_png_bytes(Image.new("L", (1, 20_000), 255)), "error"),
        "blank white page": (_png_bytes(Image.new("L", (200, 200), 255)), "error"),
        "CMYK JPEG": (cmyk.getvalue(), "ok"),
        "16-bit PNG": (_png_bytes(sixteen), "ok"),
        "palette PNG": (_png_bytes(palette), "ok"),
        "animated GIF": (animated.getvalue(), "any"),
    }


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _voiced_burst(rate: int, seconds: float = 0.5, pitch: float = 140.0) -> np.ndarray:
    """A vowel-like harmonic burst, enough to pass a speech detector (not a real digit)."""
    t = np.arange(int(rate * seconds)) / rate
    tone = sum(np.sin(2 * np.pi * pitch * h * t) / h for h in range(1, 8))
    return (0.3 * tone * np.hanning(t.size)).astype(np.float32)


def audio_cases() -> dict[str, tuple[bytes, str]]:
    rate = 16_000
    rng = np.random.default_rng(0)
    speechlike = np.concatenate(
        [np.zeros(rate // 4, np.float32), _voiced_burst(rate), np.zeros(rate // 4, np.float32)]
    )
    clipped = np.clip(speechlike * 20, -1, 1)
    eight_channels = np.tile(speechlike[:, None], (1, 8))
    good = _wav(speechlike, rate)
    # A 10-minute WAV header with only a little data behind it, and a real 10-minute clip at 8 kHz.
    ten_minutes = _wav(np.zeros(8_000 * 600, np.float32), 8_000)
    return {
        "zero-byte": (b"", "error"),
        "one sample": (_wav(np.zeros(1, np.float32), rate), "error"),
        "silence (2 s)": (_wav(np.zeros(2 * rate, np.float32), rate), "error"),
        "white noise (2 s)": (_wav(0.2 * rng.standard_normal(2 * rate).astype(np.float32), rate), "error"),
        "clipped voiced burst": (_wav(clipped, rate), "any"),
        "8-channel WAV": (_wav(eight_channels, rate), "any"),
        "10-minute WAV": (ten_minutes, "error"),
        "truncated WAV": (good[: len(good) // 3], "any"),
        "header only WAV": (good[:44], "error"),
        "text named .wav": (b"RIFF? no, just text pretending to be audio\n" * 10, "error"),
        "PNG named .wav": (_png_bytes(digit_image()), "error"),
        "oversized (30 MB)": (b"RIFF" + b"\x00" * (30 * 1024 * 1024), "error"),
    }


def text_cases() -> dict[str, tuple[str, str]]:
    return {
        "empty": ("", "error"),
        "whitespace only": (" \n\t  \n", "error"),
        "100,000 characters": ("great movie " * 8_334, "error"),
        "binary junk": (bytes(range(256)).decode("latin-1") * 4, "error"),
        "markup injection": (
            '<script>alert("x")</script><img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))',
            "any",
        ),
        "emoji only": ("😀😀🎉🔥", "any"),
        "non-English": ("Ce film était absolument magnifique, je le recommande.", "any"),
        "one word": ("terrible", "ok"),
    }


def id_cases() -> dict[str, object]:
    return {
        "unknown (99999)": 99_999,
        "zero": 0,
        "negative": -5,
        "huge": 10**30,
        "text": "abc",
        "float": 3.7,
        "None": None,
    }
