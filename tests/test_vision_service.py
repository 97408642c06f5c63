"""Vision service: decoding of every common format, the bad inputs, batching, threads, the CLI.

Multi-digit reading, HEIC and the service contract have their own files (test_vision_numbers.py,
test_vision_phone_formats.py)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from models.vision import EXAMPLES_DIR
from services import image_io
from services.base import RESULT_FIELDS
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)
from services.vision import MAX_BATCH, example_inputs, load_service
from tests.conftest import REPO_ROOT

SEVEN = EXAMPLES_DIR / "mnist_test_0000.png"  # MNIST test image #0, a 7 (light ink on black)


@pytest.fixture(scope="module")
def service():
    return load_service()


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _seven_on_paper(scale: int = 4) -> Image.Image:
    """The MNIST 7 as dark ink on white paper, upscaled, in mode L."""
    digit = Image.open(SEVEN).convert("L").resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    return Image.eval(digit, lambda v: 255 - v)


def _png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG whose header claims width × height (a decompression bomb shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ---- formats and modes ------------------------------------------------------------------------


def _format_cases():
    paper = _seven_on_paper()
    rgb = paper.convert("RGB")
    rgba = Image.new("RGBA", paper.size, (0, 0, 0, 0))
    rgba.putalpha(Image.eval(paper, lambda v: 255 - v))  # black ink, transparent paper
    white_ink = Image.new("RGBA", paper.size, (255, 255, 255, 0))
    white_ink.putalpha(Image.eval(paper, lambda v: 255 - v))  # white ink on transparent: a canvas export
    sixteen = Image.fromarray((np.asarray(paper, dtype=np.uint16) * 257).astype(np.uint16))
    return {
        "png-L": _encode(paper, "PNG"),
        "jpeg-rgb": _encode(rgb, "JPEG", quality=70),
        "jpeg-cmyk": _encode(rgb.convert("CMYK"), "JPEG"),
        "webp": _encode(rgb, "WEBP"),
        "bmp": _encode(rgb, "BMP"),
        "gif-palette": _encode(rgb.convert("P"), "GIF"),
        "tiff": _encode(paper, "TIFF"),
        "png-rgba-dark-ink": _encode(rgba, "PNG"),
        "png-rgba-white-ink": _encode(white_ink, "PNG"),
        "png-16bit": _encode(sixteen, "PNG"),
        "png-1bit": _encode(paper.point(lambda v: 255 if v > 128 else 0).convert("1"), "PNG"),
        "png-LA": _encode(paper.convert("LA"), "PNG"),
    }


@pytest.mark.parametrize("case", list(_format_cases()))
def test_every_common_format_reads_the_seven(service, case):
    result = service.predict(_format_cases()[case])
    assert result["label"] == "7", (case, result["top_k"])


def test_sixteen_bit_is_scaled_not_clipped():
    sixteen = Image.fromarray(np.full((40, 40), 30000, dtype=np.uint16))
    gray = image_io.decode_image(_encode(sixteen, "PNG")).gray
    assert 0.4 < float(gray.mean()) < 0.5  # 30000 / 65535, not clipped to white


def test_exif_orientation_is_applied(service):
    seven = _seven_on_paper()
    upright = Image.new("RGB", (seven.width + 60, seven.height), "white")  # not square: rotation shows
    upright.paste(seven.convert("RGB"), (30, 0))
    # Stored rotated by 90°; EXIF orientation 6 tells viewers to rotate it back by 270° (clockwise 90°).
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    decoded = image_io.decode_image(data)
    assert decoded.gray.shape == (upright.height, upright.width)
    assert any("EXIF" in note for note in decoded.notes)
    assert service.predict(data)["label"] == "7"


def test_polarity_is_automatic(service):
    light_on_dark = service.predict(SEVEN.read_bytes(), explain=True)
    dark_on_light = service.predict(
        _encode(Image.eval(Image.open(SEVEN), lambda v: 255 - v), "PNG"), explain=True
    )
    assert not light_on_dark["inverted"] and dark_on_light["inverted"]
    assert light_on_dark["label"] == dark_on_light["label"] == "7"
    seen_light = np.asarray(light_on_dark["digits"][0]["model_input"])
    seen_dark = np.asarray(dark_on_light["digits"][0]["model_input"])
    diff = np.abs(seen_light - seen_dark).mean()
    assert diff < 0.02


def test_animated_gif_uses_first_frame_and_says_so(service):
    frames = [_seven_on_paper().convert("P"), Image.new("P", (112, 112), 0), Image.new("P", (112, 112), 255)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = service.predict(data)
    assert result["label"] == "7"
    assert any("first frame" in note and "frames" in note for note in result["notes"])


# ---- bad input: each gets a typed error with a clear message -----------------------------------


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", EmptyInputError, "empty"),
        (b"hello, this is not an image\n" * 10, UnsupportedFormatError, "not an image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", UnsupportedFormatError, "supported format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, CorruptInputError, "damaged"),
        (_png_header_only(7000, 7000), InputTooLargeError, "megapixels"),  # 49 MP: over our limit
        (_png_header_only(30000, 30000), InputTooLargeError, "megapixels"),  # 900 MP: Pillow's bomb error
        (_png_header_only(4, 4), NothingFoundError, "no digit found"),
    ],
    ids=["zero-byte", "text", "pdf", "png-garbage", "bomb-49mp", "bomb-900mp", "tiny"],
)
def test_bad_inputs_raise_typed_errors(service, data, error, words):
    with pytest.raises(error, match=words):
        service.predict(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_files_are_corrupt_not_crashes(service, fmt):
    image = _seven_on_paper(8).convert("RGB" if fmt != "GIF" else "P")
    rng = np.random.default_rng(0)  # noise so the compressed payload is long enough to cut
    image = Image.fromarray(
        np.clip(np.asarray(image.convert("L"), float) + rng.normal(0, 20, (224, 224)), 0, 255).astype(
            np.uint8
        )
    )
    data = _encode(image.convert("RGB") if fmt in ("JPEG", "WEBP") else image, fmt)
    with pytest.raises(CorruptInputError, match="truncated or damaged|damaged"):
        service.predict(data[: len(data) // 2])


def test_corrupt_pixel_data_is_reported(service):
    data = bytearray(_encode(_seven_on_paper(), "PNG"))
    data[60:90] = b"\xff" * 30  # inside the IDAT stream: CRC and zlib both fail
    with pytest.raises((CorruptInputError, UnsupportedFormatError)):
        service.predict(bytes(data))


def test_upload_size_limit_is_checked_before_decoding(service, monkeypatch):
    monkeypatch.setattr(image_io, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(InputTooLargeError, match="MiB"):
        service.predict(b"\x89PNG" + b"\x00" * 2000)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_warning_is_an_error(monkeypatch):
    # Pillow only warns between MAX_IMAGE_PIXELS and 2×; that warning must stop decoding.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputTooLargeError):
        image_io.decode_image(_png_header_only(40, 40))


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (200, 200), 255),
        Image.new("L", (200, 200), 0),
        Image.new("RGBA", (200, 200), (0, 0, 0, 0)),
        Image.fromarray(
            np.clip(np.random.default_rng(0).normal(230, 3, (200, 200)), 0, 255).astype(np.uint8)
        ),
    ],
    ids=["white", "black", "transparent", "faint-noise"],
)
def test_blank_images_say_no_digit_found(service, image):
    with pytest.raises(NothingFoundError, match="no digit found"):
        service.predict(_encode(image, "PNG"))


def test_arrays_are_validated(service):
    with pytest.raises(EmptyInputError):
        service.predict_array(np.zeros((0, 0)))
    with pytest.raises(UnsupportedFormatError):
        service.predict_array(np.zeros((10, 10, 2), dtype=np.uint8))
    with pytest.raises(NothingFoundError):
        service.predict_array(np.zeros((280, 280, 4), dtype=np.uint8))  # an untouched canvas


def test_canvas_rgba_drawing_is_read(service):
    canvas = np.zeros((280, 280, 4), dtype=np.uint8)  # transparent, black strokes: what st_canvas returns
    ink = np.asarray(_seven_on_paper(10).resize((280, 280)), dtype=np.uint8) < 128
    canvas[ink] = (0, 0, 0, 255)
    assert service.predict_array(canvas)["label"] == "7"


# ---- results, batching, threads ------------------------------------------------------------------


def test_result_schema_and_explanations(service):
    result = service.predict(SEVEN.read_bytes(), explain=True, top_k=3)
    assert set(RESULT_FIELDS) <= set(result)
    assert set(result["stages_ms"]) == {"preprocess", "forward", "postprocess"}
    assert result["label"] == "7" and 0.5 < result["confidence"] <= 1 and not result["low_confidence"]
    assert [row["label"] for row in result["top_k"]][0] == "7" and len(result["top_k"]) == 3
    scores = [row["score"] for row in result["top_k"]]
    assert scores == sorted(scores, reverse=True)
    assert result["latency_ms"] > 0 and result["device"]
    (digit,) = result["digits"]
    assert digit["label"] == "7" and digit["confidence"] == result["confidence"]
    x0, y0, x1, y1 = digit["box"]
    assert 0 <= x0 < x1 <= 28 and 0 <= y0 < y1 <= 28
    model_input, saliency = np.asarray(digit["model_input"]), np.asarray(digit["saliency"])
    assert model_input.shape == saliency.shape == (28, 28)
    assert 0 <= saliency.min() and saliency.max() == pytest.approx(1, abs=1e-3)
    json.dumps(result)  # plain Python only


def test_batch_matches_single_and_keeps_errors_in_place(service):
    files = [e["path"] for e in example_inputs()]
    payloads = [open(p, "rb").read() for p in files]
    payloads.insert(2, b"not an image")
    batch = service.predict_batch(payloads)
    assert len(batch) == len(payloads)
    assert batch[2]["error"]["type"] == "UnsupportedFormatError" and batch[2]["error"]["message"]
    for data, result in zip(payloads, batch, strict=True):
        if "error" in result:
            continue
        single = service.predict(data)
        assert single["label"] == result["label"]
        assert single["confidence"] == pytest.approx(result["confidence"], abs=1e-3)
    with pytest.raises(InputTooLargeError, match="limit"):
        service.predict_batch([payloads[0]] * (MAX_BATCH + 1))


def test_eight_threads_agree_with_a_serial_run(service):
    payloads = [open(e["path"], "rb").read() for e in example_inputs()] * 3
    serial = [(r["label"], r["confidence"]) for r in (service.predict(p, explain=True) for p in payloads)]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda p: service.predict(p, explain=True), payloads))
    assert [(r["label"], r["confidence"]) for r in threaded] == serial


def test_service_is_immutable(service):
    with pytest.raises(AttributeError):
        service.device = "elsewhere"  # type: ignore[misc]
    assert not any(p.requires_grad for p in service.model.parameters())


def test_examples_and_self_test(service):
    examples = example_inputs()
    assert len(examples) >= 8 and all(e["label"].isdigit() for e in examples)
    report = service.self_test()
    assert set(report) == {"input", "output", "latency_ms"}
    assert report["output"].startswith("7 ")


def test_cli_prints_one_json_line_per_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.vision",
            str(SEVEN),
            str(bad),
            str(empty),
            str(tmp_path / "missing.png"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DEMO_DEVICE": "cpu", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert len(lines) == 4
    assert (
        set(lines[0]) >= {"file", "label", "confidence", "top_k", "latency_ms"} and lines[0]["label"] == "7"
    )
    assert all("error" in line and line["error"] for line in lines[1:])
    assert "empty" in lines[2]["error"]["message"]


FUZZ_EXAMPLES = int(os.environ.get("VISION_FUZZ_EXAMPLES", "60"))  # raise it for a longer fuzzing run
_SEEDS = {
    fmt: _encode(_seven_on_paper(2).convert("RGB" if fmt == "JPEG" else "L"), fmt)
    for fmt in ("PNG", "JPEG", "GIF", "BMP")
}


@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(sorted(_SEEDS)),
    cut=st.integers(0, 4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
)
def test_mangled_files_give_a_result_or_a_typed_error(service, fmt, cut, flips):
    data = bytearray(_SEEDS[fmt][: max(cut, 0) or None])
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    try:
        result = service.predict(bytes(data))
    except InputError as err:
        assert str(err)
    else:
        assert result["label"] and result["label"].isdigit()


# ---- the service contract ---------------------------------------------------------------------


def test_one_instance_per_process_and_info_from_the_bundle(service):
    assert load_service() is service
    info = service.info()
    assert info["task"] == "vision" and info["name"] == "mnist-cnn"
    assert info["parameters"] == sum(p.numel() for p in service.model.parameters())
    metrics = json.loads((REPO_ROOT / "models" / "vision" / "metrics.json").read_text())
    assert info["metrics"]["accuracy"] == metrics["accuracy"] >= 0.993
    assert info["metrics"]["command"].startswith("python -m models evaluate vision")
    assert info["architecture"].startswith("Conv 32 3×3") and "Dense 10" in info["architecture"]
    assert info["limits"]["max_batch"] == MAX_BATCH
    json.dumps(info)


def test_evaluate_cli_records_the_command_it_ran(tmp_path, monkeypatch):
    from models.vision import cli

    rng = np.random.default_rng(0)
    fake = {
        "x_train": rng.integers(0, 255, (4, 28, 28), dtype=np.uint8),
        "y_train": np.arange(4) % 10,
        "x_test": np.stack([np.asarray(Image.open(SEVEN).convert("L"))] * 3),
        "y_test": np.array([7, 7, 7]),
    }
    monkeypatch.setattr("models.vision.train.load_mnist", lambda data_dir: fake)
    out = tmp_path / "metrics.json"
    argv = ["--data-dir", str(tmp_path), "--metrics-out", str(out), "--pipeline-sample", "2"]
    assert cli.main("evaluate", argv) == 0
    written = json.loads(out.read_text())
    assert written["command"] == "python -m models evaluate vision " + " ".join(argv)
    assert written["accuracy"] == 1.0
