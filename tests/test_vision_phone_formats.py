"""Phone formats: HEIC/HEIF (pillow-heif) and AVIF (Pillow), with orientation and the same limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.vision import EXAMPLES_DIR
from services import image_io
from services.errors import CorruptInputError, InputTooLargeError
from services.vision import load_service


@pytest.fixture(scope="module")
def service():
    return load_service()


def _photo_of_a_seven(size: tuple[int, int] = (480, 360)) -> Image.Image:
    """The MNIST 7 as dark ink on a slightly uneven grey sheet, like a phone photo."""
    seven = (
        Image.open(EXAMPLES_DIR / "mnist_test_0000.png")
        .convert("L")
        .resize((200, 200), Image.Resampling.BICUBIC)
    )
    ink = np.zeros(size[::-1], dtype=np.float32)
    ink[80:280, 140:340] = np.asarray(seven, dtype=np.float32) / 255
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    paper = 0.85 + 0.1 * xx / size[0] - 0.05 * yy / size[1]
    grey = paper * (1 - 0.85 * ink)
    return Image.fromarray((np.clip(grey, 0, 1) * 255).astype(np.uint8)).convert("RGB")


def _heic(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="HEIF", quality=80, **options)
    return buffer.getvalue()


def test_a_heic_photo_of_a_digit_is_read(service):
    data = _heic(_photo_of_a_seven())
    assert data[4:12] == b"ftypheic"  # a real HEIC container, as an iPhone writes it
    result = service.predict(data)
    assert result["format"] == "HEIF"
    assert result["label"] == "7" and not result["low_confidence"]


def test_heic_orientation_is_applied(service):
    upright = _photo_of_a_seven()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the sensor's way round
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    data = _heic(stored, exif=exif.tobytes())
    decoded = image_io.decode_image(data)
    assert decoded.gray.shape == (upright.height, upright.width)
    assert any("orientation" in note for note in decoded.notes)
    assert service.predict(data)["label"] == "7"


def test_an_avif_photo_is_read(service):
    buffer = io.BytesIO()
    _photo_of_a_seven().save(buffer, format="AVIF", quality=80)
    result = service.predict(buffer.getvalue())
    assert result["format"] == "AVIF" and result["label"] == "7"


def test_heic_obeys_the_pixel_limit(monkeypatch):
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100_000)  # the 480×360 photo is 0.17 MP
    with pytest.raises(InputTooLargeError, match="megapixels"):
        image_io.decode_image(_heic(_photo_of_a_seven()))


def test_a_truncated_heic_is_reported_as_damaged():
    data = _heic(_photo_of_a_seven())
    with pytest.raises(CorruptInputError):
        image_io.decode_image(data[: len(data) // 2])


def test_the_preview_of_a_heic_is_upright_rgb():
    rgb = image_io.preview_rgb(_heic(_photo_of_a_seven()), max_side=240)
    assert rgb.dtype == np.uint8 and rgb.shape == (180, 240, 3)
