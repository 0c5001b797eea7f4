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


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Decode any 8/16-bit, grey/RGB/RGBA image into an (H, W, 3) RGB uint8 array."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"cannot read {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise ImageReadError(f"cannot read {path}: the file is empty")
    try:
        image = cv2.imdecode(data, _decode_flag(data))
    except cv2.error as error:  # e.g. a header claiming a size beyond OpenCV's limits
        raise ImageReadError(f"cannot read {path}: not a decodable image ({getattr(error, 'err', 'rejected')})") \
            from None
    if image is None:
        raise ImageReadError(f"cannot read {path}: not a decodable image")
    if image.shape[0] * image.shape[1] > MAX_DECODED_PIXELS:
        image = _shrink(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
