"""Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016).

A saliency map *hits* when its peak lies on a ground-truth object. Conventions:

* Boxes are ``[x1, y1, x2, y2]`` in pixel coordinates of the map (the original image). Pixel
  ``(x, y)`` covers ``[x, x + 1) x [y, y + 1)``; it is inside a box when its centre is:
  ``x1 <= x + 0.5 <= x2`` and ``y1 <= y + 0.5 <= y2`` (edges included).
* Masks are boolean ``(H, W)`` arrays of the map's shape; a pixel is inside when the mask is True there.
* Ties: every pixel attaining the maximum is a peak, and the map hits when *any* peak is inside
  (so the result does not depend on raster order). A constant map has no peak and always misses.
* ``tolerance`` (pixels) grows every box by that much on each side and dilates every mask with a
  ``(2 * tolerance + 1)`` square, i.e. a peak within Chebyshev distance ``tolerance`` counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def pointing_game(
    saliency: np.ndarray,
    boxes: Sequence[Sequence[float]] | None = None,
    masks: Sequence[np.ndarray] | None = None,
    tolerance: int = 0,
) -> bool:
    """Return True when a peak of ``saliency`` (H, W) lies inside any box or mask."""
    boxes = [] if boxes is None else boxes
    masks = [] if masks is None else masks
    if len(boxes) == 0 and len(masks) == 0:
        raise ValueError("pointing_game needs ground truth: pass boxes or masks")
    if tolerance < 0:
        raise ValueError(f"pointing_game tolerance must be >= 0, got {tolerance}")
    peaks_y, peaks_x = peak_pixels(saliency)
    if peaks_y.size == 0:
        return False
    shape = np.shape(saliency)
    return any(_peaks_in_box(peaks_x, peaks_y, box, tolerance) for box in boxes) or any(
        _peaks_in_mask(peaks_x, peaks_y, mask, shape, tolerance) for mask in masks
    )


def pointing_game_score(hits: Sequence[bool]) -> float:
    """Hit rate: the fraction of True results."""
    if len(hits) == 0:
        raise ValueError("pointing_game_score needs at least one result")
    return float(np.mean(np.asarray(hits, dtype=bool)))


def peak_pixels(saliency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of all pixels attaining the maximum; empty for a constant map."""
    arr = np.asarray(saliency, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"pointing_game expects a 2-D saliency map, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("pointing_game saliency map contains NaN or inf")
    peak = arr.max()
    if peak == arr.min():
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    rows, cols = np.nonzero(arr == peak)
    return rows, cols


def _peaks_in_box(xs: np.ndarray, ys: np.ndarray, box: Sequence[float], tolerance: int) -> bool:
    if len(box) != 4:
        raise ValueError(f"pointing_game box must be [x1, y1, x2, y2], got {list(box)}")
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = xs + 0.5, ys + 0.5
    inside = (x1 - tolerance <= cx) & (cx <= x2 + tolerance) & (y1 - tolerance <= cy) & (cy <= y2 + tolerance)
    return bool(inside.any())


def _peaks_in_mask(
    xs: np.ndarray, ys: np.ndarray, mask: np.ndarray, shape: tuple[int, ...], tolerance: int
) -> bool:
    region = np.asarray(mask).astype(bool)
    if region.shape != tuple(shape):
        raise ValueError(f"pointing_game mask shape {region.shape} != saliency shape {tuple(shape)}")
    if tolerance > 0:
        kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
        region = cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
    return bool(region[ys, xs].any())
