"""Reading images from disk into RGB uint8 arrays, with one-line errors for unreadable files."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from otx_xai.errors import UserError

# A decoded image larger than this many pixels is read at a reduced scale (bounded memory).
MAX_DECODED_PIXELS = 4096 * 4096


class ImageReadError(UserError):
    """An image file that cannot be decoded; the message says which file and why."""


def printable_path(path: str | Path) -> str:
    """``path`` as text that encodes to UTF-8: bytes of a non-UTF-8 file name shown as ``\\xe9``."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decode any 8/16-bit, grey/RGB/RGBA image (OpenCV; GIF and what else only Pillow reads, through Pillow)
    into an (H, W, 3) RGB uint8 array."""
    path = Path(path)
    shown = printable_path(path)
    if shown != str(path):  # a name with bytes that are not UTF-8: the index, CSV and gallery could not hold it
        raise ImageReadError(f"cannot read {shown}: its file name is not valid UTF-8; rename it to explain it")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:  # also a symlink loop (ELOOP) or a folder where a file was expected
        raise ImageReadError(f"cannot read {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise ImageReadError(f"cannot read {path}: the file is empty")
    try:
        image = cv2.imdecode(data, _decode_flag(data))
    except cv2.error as error:  # e.g. a header claiming a size beyond OpenCV's limits
        raise ImageReadError(f"cannot read {path}: not a decodable image ({getattr(error, 'err', 'rejected')})") \
            from None
    if image is None:
        image = _decode_with_pillow(data)
    if image is None:
        raise ImageReadError(f"cannot read {path}: not a decodable image")
    if image.shape[0] * image.shape[1] > MAX_DECODED_PIXELS:
        image = _shrink(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode_with_pillow(data: np.ndarray) -> np.ndarray | None:
    """BGR uint8 of a format OpenCV does not read (GIF: its first frame), or None; bounded like OpenCV's."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            picture = PIL.Image.open(io.BytesIO(data.tobytes()))
            if picture.width * picture.height > 16 * MAX_DECODED_PIXELS:
                return None
            rgb = np.asarray(picture.convert("RGB"))
    except Exception:  # Pillow raises many types for one cause: not an image it knows
        return None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _decode_flag(data: np.ndarray) -> int:
    """IMREAD_COLOR, or a reduced-scale flag when the header says the image is huge (bounded memory)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = PIL.Image.open(io.BytesIO(data.tobytes())).size
    except Exception:  # an unreadable header: let OpenCV decide
        return cv2.IMREAD_COLOR
    if width * height <= MAX_DECODED_PIXELS:
        return cv2.IMREAD_COLOR
    for factor, flag in ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4)):
        if width * height / factor**2 <= MAX_DECODED_PIXELS:
            return flag
    return cv2.IMREAD_REDUCED_COLOR_8


def _shrink(image: np.ndarray) -> np.ndarray:
    scale = (MAX_DECODED_PIXELS / (image.shape[0] * image.shape[1])) ** 0.5
    size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
