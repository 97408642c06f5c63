"""Safe image decoding for uploads: bytes (or an array) → one grey float image, or a typed error.

Guards, in order, each before the expensive step it protects:

- size: 0 bytes → EmptyInputError; more than MAX_UPLOAD_BYTES → InputTooLargeError;
- format: only the decoders in ALLOWED_FORMATS are tried (no EPS/PDF/ICO plug-ins);
  anything else → UnsupportedFormatError;
- pixels: the header's width × height is checked against MAX_PIXELS before any pixel is decoded
  (decompression bombs); Pillow's own DecompressionBombWarning is turned into an error for this
  process, so it can never be silently ignored;
- damage: truncated or corrupt pixel data → CorruptInputError;
- animation: an animated GIF/WEBP/PNG is accepted, its FIRST frame is used, and the result says so
  in `notes`.

Phone formats: HEIC/HEIF (the iPhone camera's default) is decoded by pillow-heif, AVIF by Pillow
itself; both go through the same guards, and their orientation is applied like a JPEG's.

Then: EXIF orientation is applied, transparency is composited (on white, or on black when the ink
itself is light, so white-on-transparent drawings still work), CMYK / palette / 16-bit / float
modes are mapped to grey in [0, 1], and the picture is reduced for the preprocessing step.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from services import limits
from services.errors import (
    CorruptInputError,
    EmptyInputError,
    InputTooLargeError,
    NothingFoundError,
    UnsupportedFormatError,
)

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = limits.VISION.max_upload_bytes  # 20 MiB per image
MAX_PIXELS = 40_000_000  # 40 megapixels (a 48 MP phone photo should be resized first)
MIN_SIDE = 8  # pixels; smaller images cannot hold a readable digit
MAX_ARRAY_SIDE = limits.MAX_ARRAY_SIDE  # for arrays handed over directly (the drawing canvas)
# JPEGs are decoded at a reduced scale (DCT scaling) down to no less than this on each side: the
# readers work on at most 360 px (the multi-digit reader; one digit 320), so more pixels are only
# decoded to be averaged away again (a 1 MP photo: half the decode time, a quarter of the pixels).
DECODE_SIDE = 360
# JPEG also yields MPO (multi-picture) files; HEIF is pillow-heif's plug-in, AVIF is Pillow's own.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "HEIF", "AVIF")
FORMAT_NAMES = "PNG, JPEG, HEIC, AVIF, WEBP, BMP, GIF or TIFF"
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "heic", "heif", "avif", "webp", "bmp", "gif", "tif", "tiff")

# Registers the "HEIF" decoder with Pillow. Its thumbnails and depth images are not needed, and
# orientation is left in the EXIF block so that ImageOps.exif_transpose below treats every format alike.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# Process-wide and set once at import (thread-safe, unlike warnings.catch_warnings per call):
# Pillow warns above Image.MAX_IMAGE_PIXELS; we want that to stop decoding, not just log.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class DecodedImage:
    gray: np.ndarray  # (H, W) float32 in [0, 1], 1 = white; orientation corrected
    format: str  # "PNG", "JPEG", ... or "array"
    size: tuple[int, int]  # original (width, height) before any reduction, as stored
    mode: str  # original Pillow mode ("RGB", "RGBA", "P", "CMYK", "I;16", ...)
    notes: tuple[str, ...] = field(default_factory=tuple)  # things worth telling the user
    turned: bool = False  # EXIF orientation swapped width and height

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as the picture is seen, after EXIF orientation: the frame of result boxes."""
        return (self.size[1], self.size[0]) if self.turned else self.size


def _too_large(width: int, height: int) -> InputTooLargeError:
    limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
    return InputTooLargeError(
        f"the image is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels); "
        f"the limit is {limit / 1e6:g} megapixels. Please resize it and try again."
    )


def _check_dimensions(width: int, height: int) -> None:
    # Pillow's own limit too (it only *warns* below twice that), whatever the warning filters say.
    pillow_limit = Image.MAX_IMAGE_PIXELS or MAX_PIXELS
    if width * height > min(MAX_PIXELS, pillow_limit):
        raise _too_large(width, height)
    if min(width, height) < MIN_SIDE:
        raise NothingFoundError(
            f"the image is only {width}×{height} pixels; no digit found (send at least {MIN_SIDE}×{MIN_SIDE})"
        )


def _composite_alpha(lum: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten transparency: white behind dark ink, black behind light ink."""
    if float(alpha.min()) >= 0.999:
        return lum
    opaque = alpha > 0.5
    if not opaque.any():
        return np.ones_like(lum)  # fully transparent: blank, preprocessing will say so
    ink_level = float(np.average(lum[opaque], weights=alpha[opaque]))
    backdrop = 0.0 if ink_level > 0.5 else 1.0
    return lum * alpha + backdrop * (1 - alpha)


def _to_gray(image: Image.Image) -> np.ndarray:
    """Any Pillow mode → (H, W) float32 grey in [0, 1]."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        raw = np.asarray(image, dtype=np.float64)
        top = 65535.0 if (mode.startswith("I;16") or raw.max() > 255) else 255.0
        return np.clip(raw / top, 0, 1).astype(np.float32)
    if mode == "F":
        raw = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = raw.max() - raw.min()
        return ((raw - raw.min()) / span if span > 0 else np.zeros_like(raw)).astype(np.float32)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if has_alpha:
        la = np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32) / 255
        return _composite_alpha(la[..., 0], la[..., 1]).astype(np.float32)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


# Leading bytes of the accepted formats: a file that starts like one but cannot be opened is
# damaged (CorruptInputError), not an unsupported format.
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def sniff_format(data: bytes) -> str | None:
    """The format the leading bytes announce, if it is one we accept."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":  # ISO base media file: the brand tells HEIF from AVIF (or a video)
        brand = data[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
    return next((fmt for magic, fmt in _SIGNATURES.items() if data.startswith(magic)), None)


def _open(data: bytes) -> Image.Image:
    """Size and format checks, then Pillow's header parse (no pixels decoded yet)."""
    if not data:
        raise EmptyInputError("the file is empty (0 bytes)")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputTooLargeError(
            f"the file is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_BYTES / 2**20:.0f} MiB"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # reads the header only
    except UnidentifiedImageError as err:
        announced = sniff_format(data)
        if announced:
            raise CorruptInputError(
                f"the file starts like a {announced} image but is damaged or truncated"
            ) from err
        raise UnsupportedFormatError(
            f"this file is not an image in a supported format ({FORMAT_NAMES})"
        ) from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InputTooLargeError(
            f"the image is too large to decode safely; the limit is {MAX_PIXELS / 1e6:.0f} megapixels"
        ) from err
    except Exception as err:  # noqa: BLE001 - damaged headers raise all sorts (SyntaxError, struct.error, ...)
        raise CorruptInputError("the image header is damaged and cannot be read") from err
    _check_dimensions(*image.size)
    return image


def _load_upright(image: Image.Image, notes: list[str], gray: bool = False) -> tuple[Image.Image, bool]:
    """Decode the first frame (reduced where cheap), turned upright; → (picture, width/height swapped).

    `gray`: the caller wants grey only, so a colour JPEG is decoded straight to its luma channel
    (libjpeg skips the colour conversion; the same weights as Pillow's RGB → L).
    """
    fmt = image.format or "?"
    frames = int(getattr(image, "n_frames", 1)) if getattr(image, "is_animated", False) else 1
    if frames > 1:
        image.seek(0)
        notes.append(f"animated {fmt} with {frames} frames: only the first frame was used")
    if fmt in ("JPEG", "MPO"):
        image.draft("L" if gray else None, (DECODE_SIDE, DECODE_SIDE))  # decode at 1/2, 1/4 or 1/8 scale
    image.load()
    if fmt in ("HEIF", "AVIF") and max(image.size) >= 4 * DECODE_SIDE:
        # Phone photos (12 MP and more): box-average down early, as JPEG's draft mode does.
        image = image.reduce(max(image.size) // (2 * DECODE_SIDE))
    # libheif applies a HEIF's own rotation while decoding and pillow-heif then resets the EXIF tag
    # to 1 (keeping the original in info), so the tag below only turns the other formats.
    heif_orientation = int(image.info.get("original_orientation") or 1)
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
        # exif_transpose copies the picture even when there is nothing to turn.
        oriented = ImageOps.exif_transpose(image) if orientation in range(2, 9) else image
    except Exception:  # noqa: BLE001 - a broken EXIF block must not reject a readable picture
        logger.info("ignoring unreadable EXIF orientation")
        orientation, oriented = 1, image
    if orientation in range(2, 9) or heif_orientation in range(2, 9):
        notes.append("turned upright using the photo's EXIF orientation")
    return oriented, orientation in range(5, 9)


# What decoders raise on damaged pixel data (pillow-heif reports libheif's errors as RuntimeError).
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, RuntimeError)


def decode_image(data: bytes) -> DecodedImage:
    """Validate and decode an uploaded file; raises an InputError subclass for bad input."""
    notes: list[str] = []
    image = _open(data)
    with image:
        fmt = image.format or "?"
        width, height = image.size
        original_mode = image.mode
        try:
            oriented, turned = _load_upright(image, notes, gray=True)
            gray = _to_gray(oriented)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _too_large(width, height) from err
        except _DAMAGED as err:
            raise CorruptInputError("the image data is truncated or damaged and cannot be decoded") from err
    return DecodedImage(
        gray=gray,
        format=fmt,
        size=(width, height),
        mode=original_mode,
        notes=tuple(notes),
        turned=turned,
    )


def preview_rgb(data: bytes, max_side: int = 1024) -> np.ndarray:
    """An upload as the page can show it: upright (H, W, 3) uint8 RGB, at most `max_side` pixels.

    Same guards as `decode_image`; for formats browsers cannot show (HEIC, TIFF) and for drawing
    boxes in the coordinates of a result's `size`.
    """
    image = _open(data)
    with image:
        width, height = image.size
        try:
            oriented, _ = _load_upright(image, [])
            rgb = oriented.convert("RGBA")
            backdrop = Image.new("RGBA", rgb.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(backdrop, rgb).convert("RGB")
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _too_large(width, height) from err
        except _DAMAGED as err:
            raise CorruptInputError("the image data is truncated or damaged and cannot be decoded") from err
    return np.asarray(rgb, dtype=np.uint8)


def decode_array(array: np.ndarray) -> DecodedImage:
    """An in-memory picture (e.g. the drawing canvas: (H, W, 4) uint8 RGBA) → DecodedImage."""
    array = np.asarray(array)
    if array.size == 0:
        raise EmptyInputError("the picture is empty")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UnsupportedFormatError(
            f"expected a grey, RGB or RGBA picture, got an array of shape {array.shape}"
        )
    h, w = array.shape[:2]
    if max(h, w) > MAX_ARRAY_SIDE:
        raise _too_large(w, h)
    _check_dimensions(w, h)
    if array.dtype != np.uint8:
        values = np.nan_to_num(array.astype(np.float64))
        scale = 255.0 if values.max() <= 1.0 else 1.0
        array = np.clip(values * scale, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    image = Image.fromarray(np.ascontiguousarray(array))  # uint8: L, RGB or RGBA by shape
    return DecodedImage(gray=_to_gray(image), format="array", size=(w, h), mode=image.mode)
