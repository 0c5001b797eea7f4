"""Insertion and deletion AUC (Petsiuk et al., "RISE", BMVC 2018), plus the map helpers metrics share.

Pixels are ranked by saliency, highest first; ties keep raster (row-major) order. With ``N`` pixels,
step ``i`` of ``steps`` touches the top ``ceil(i * N / steps)`` pixels (0 at step 0, all at the last):

* insertion: those pixels are copied from the image onto a baseline canvas. As in RISE, the default
  canvas is the blurred image (11x11 Gaussian, sigma 5); ``"zero"`` (black) or an (H, W, 3) array
  may be given instead.
* deletion: those pixels of the image are set to zero (black), as in RISE.

Each curve is the target score at the ``steps + 1`` points ``x = i / steps`` in [0, 1], and its AUC
is the trapezoid rule over them. ``delta = insertion - deletion`` (higher is better).
All ``2 * (steps + 1)`` perturbed images go through ``score_fn`` in batches of ``batch_size``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import cv2
import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of uint8 images (N, H, W, 3) in original image space to class scores (N, K)."""

BLUR_KSIZE = 11
BLUR_SIGMA = 5.0


def resize_map(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D map to ``size = (H, W)`` bilinearly; uint8 stays uint8, other dtypes become float32."""
    arr = np.asarray(saliency)
    if arr.ndim != 2:
        raise ValueError(f"saliency map must be 2-D, got shape {arr.shape}")
    height, width = size
    if arr.shape == (height, width):
        return arr
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_LINEAR)


def normalize_map(saliency: np.ndarray) -> np.ndarray:
    """Map to float64 in [0, 1]: uint8 is divided by 255; floats already in [0, 1] are kept as they
    are; any other map is min-max normalized (a constant one becomes all zeros)."""
    arr = np.asarray(saliency)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("saliency map contains NaN or inf")
    low, high = float(arr.min()), float(arr.max())
    if low >= 0.0 and high <= 1.0:
        return arr
    if high == low:
        return np.zeros_like(arr)
    return (arr - low) / (high - low)


def saliency_ranks(saliency: np.ndarray) -> np.ndarray:
    """Rank of every pixel (0 = most salient) in descending saliency, ties in raster order; shape (H, W)."""
    flat = np.asarray(saliency, dtype=np.float64).ravel()
    order = np.argsort(-flat, kind="stable")
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(np.shape(saliency))


def pixels_at_step(step: int, steps: int, total: int) -> int:
    """Number of pixels touched at ``step``: ``ceil(step * total / steps)``."""
    return -(-step * total // steps)


def insertion_baseline(image: np.ndarray, baseline: str | np.ndarray) -> np.ndarray:
    """The canvas pixels are inserted into: ``"blur"``, ``"zero"`` or an explicit image."""
    if isinstance(baseline, np.ndarray):
        if baseline.shape != image.shape:
            raise ValueError(f"insertion baseline shape {baseline.shape} != image shape {image.shape}")
        return baseline.astype(np.uint8, copy=False)
    if baseline == "blur":
        return cv2.GaussianBlur(image, (BLUR_KSIZE, BLUR_KSIZE), BLUR_SIGMA)
    if baseline == "zero":
        return np.zeros_like(image)
    raise ValueError(f"unknown insertion baseline {baseline!r}: choose 'blur', 'zero' or an image array")


def target_scores(
    score_fn: ScoreFn, images: Iterable[np.ndarray], target: int, batch_size: int
) -> np.ndarray:
    """Score ``images`` in batches and return the ``target`` column as float64 (N,)."""
    scores: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            scores.append(_score_batch(score_fn, batch, target))
            batch = []
    if batch:
        scores.append(_score_batch(score_fn, batch, target))
    return np.concatenate(scores) if scores else np.empty(0)


def _score_batch(score_fn: ScoreFn, batch: list[np.ndarray], target: int) -> np.ndarray:
    out = np.asarray(score_fn(np.stack(batch)))
    if out.ndim != 2 or out.shape[0] != len(batch):
        raise ValueError(f"score_fn must return (N, K) scores for N={len(batch)} images, got {out.shape}")
    if not 0 <= target < out.shape[1]:
        raise ValueError(f"target class {target} out of range for {out.shape[1]} scores")
    return out[:, target].astype(np.float64)


def curve_auc(curve: np.ndarray) -> float:
    """Trapezoid-rule area under ``curve`` sampled evenly over x in [0, 1]."""
    return float(np.trapezoid(curve, np.linspace(0.0, 1.0, len(curve))))


def insertion_deletion_auc(
    image: np.ndarray,
    saliency: np.ndarray,
    target: int,
    score_fn: ScoreFn,
    steps: int = 30,
    batch_size: int = 16,
    baseline: str | np.ndarray = "blur",
) -> dict[str, float]:
    """Insertion AUC, deletion AUC and their difference for one image and one target class.

    ``saliency`` is resized to the image when their sizes differ; ``baseline`` is the insertion canvas.
    """
    image = _check_image(image)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"insertion_deletion needs steps, batch_size >= 1, got {steps}, {batch_size}")
    ranks = saliency_ranks(resize_map(saliency, image.shape[:2]))
    canvas = insertion_baseline(image, baseline)
    images = _perturbed_images(image, canvas, ranks, steps)
    scores = target_scores(score_fn, images, target, batch_size)
    insertion = curve_auc(scores[: steps + 1])
    deletion = curve_auc(scores[steps + 1 :])
    return {"insertion": insertion, "deletion": deletion, "delta": insertion - deletion}


def _perturbed_images(
    image: np.ndarray, canvas: np.ndarray, ranks: np.ndarray, steps: int
) -> Iterator[np.ndarray]:
    """The steps + 1 insertion images, then the steps + 1 deletion images, built lazily."""
    black = np.zeros_like(image)
    for start, fill in ((canvas, image), (image, black)):
        for step in range(steps + 1):
            touched = (ranks < pixels_at_step(step, steps, ranks.size))[..., None]
            yield np.where(touched, fill, start)


def _check_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, C) uint8, got shape {arr.shape} dtype {arr.dtype}")
    return arr
