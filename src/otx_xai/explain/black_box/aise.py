"""AISE core: adaptive input sampling with Gaussian kernels, generic over the task's score function.

For every target and kernel width, a DIRECT search (``direct.py``) places a Gaussian kernel of that
width at the centre (y, x) that maximizes

    f_t(image ⊙ g) − f_t(image ⊙ (1 − g))

(the target's score with only the kernel's region kept, minus with it deleted: ``objective=
"kept_minus_deleted"``, the default, two inferences per evaluation), or f_t(image ⊙ g) alone
(``objective="kept"``, one inference per evaluation: what openvino_xai's AISEDetection scores, and what
detection uses here), within ``iterations`` evaluations. The map is then a kernel density estimate over
the sampled kernels: per width Σ_i (value_i − min_j value_j) · g_i, scaled to a maximum of 1, summed over
the widths. The weights are shifted by the search's lowest value (OpenVINO XAI weights by the raw
values): an offset common to every sample says nothing about where the object is, and with raw values a
search whose gains are all negative (a class the model also gives a grey image) peaks in the corner
farthest from every sample. The searches of all targets and widths run in lockstep, each round's
perturbed images scored in one ``score_fn`` call, so a batched or asynchronous backend sees large batches.

``score_fn(perturbed images (N, 3, h, w)) -> scores (N, T)`` is all the core knows of the model:
classification passes class scores, detection can pass per-box scores (e.g. IoU × class score of the
best-matching detection) and per-target ``bounds`` / ``kernel_widths`` (e.g. around each box).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from otx_xai.explain.black_box.direct import DirectSearch

ScoreFn = Callable[[np.ndarray], np.ndarray]

KEPT_MINUS_DELETED = "kept_minus_deleted"  # f(image ⊙ g) − f(image ⊙ (1 − g)): two images per evaluation
KEPT = "kept"  # f(image ⊙ g): one image per evaluation
IMAGES_PER_EVALUATION = {KEPT_MINUS_DELETED: 2, KEPT: 1}


def images_per_evaluation(objective: str) -> int:
    """Perturbed images (inferences) one evaluation of ``objective`` costs."""
    if objective not in IMAGES_PER_EVALUATION:
        raise ValueError(f"AISE objective {objective!r} is not one of {', '.join(IMAGES_PER_EVALUATION)}")
    return IMAGES_PER_EVALUATION[objective]


def gaussian_kernels(centres: np.ndarray, widths: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Gaussian masks (n, h, w) float32 centred at ``centres`` (n, 2: y, x in [0, 1] of the input) with
    standard deviations ``widths`` (n,) as fractions of the side, each scaled to a peak of 1."""
    ys = np.linspace(0.0, 1.0, size[0])
    xs = np.linspace(0.0, 1.0, size[1])
    two_var = 2.0 * np.asarray(widths, dtype=np.float64)[:, None] ** 2
    gy = np.exp(-((ys[None] - centres[:, :1]) ** 2) / two_var)
    gx = np.exp(-((xs[None] - centres[:, 1:]) ** 2) / two_var)
    gy /= gy.max(axis=1, keepdims=True)
    gx /= gx.max(axis=1, keepdims=True)
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def aise_saliency(
    image: np.ndarray,
    score_fn: ScoreFn,
    num_targets: int,
    iterations: int,
    kernel_widths: Sequence[float] | np.ndarray,
    bounds: np.ndarray | None = None,
    epsilon: float = 0.1,
    max_images: int = 256,
    objective: str = KEPT_MINUS_DELETED,
) -> np.ndarray:
    """AISE maps (T, h, w) float64 of one preprocessed image (3, h, w).

    Args:
        score_fn: perturbed images (N, 3, h, w) → scores (N, num_targets).
        iterations: evaluations per target and kernel width (each costs ``images_per_evaluation(objective)``).
        kernel_widths: (W,) for every target, or (T, W) per target; fractions of the input side.
        bounds: (T, 2, 2) per target ``[[y_low, x_low], [y_high, x_high]]`` in [0, 1] where kernel
            centres may go; None: anywhere.
        epsilon: DIRECT's required relative improvement.
        max_images: most perturbed images per ``score_fn`` call.
        objective: ``"kept_minus_deleted"`` (kernel kept minus kernel deleted) or ``"kept"`` (kernel kept).
    """
    per_evaluation = images_per_evaluation(objective)
    size = (int(image.shape[-2]), int(image.shape[-1]))
    widths = np.asarray(kernel_widths, dtype=np.float64)
    if widths.ndim == 1:
        widths = np.tile(widths, (num_targets, 1))
    if bounds is None:
        bounds = np.tile(np.array([[0.0, 0.0], [1.0, 1.0]]), (num_targets, 1, 1))
    searches = [(t, w, DirectSearch(bounds[t][0], bounds[t][1], iterations, epsilon))
                for t in range(num_targets) for w in range(widths.shape[1])]
    while True:
        asked = [(t, w, search, search.ask()) for t, w, search in searches if not search.done]
        if not asked:
            break
        centres = np.concatenate([points for *_, points in asked])
        sigma = np.concatenate([np.full(len(points), widths[t, w]) for t, w, _, points in asked])
        target = np.concatenate([np.full(len(points), t) for t, _, _, points in asked])
        gains = _gains(image, score_fn, centres, sigma, target, size, max_images, per_evaluation)
        start = 0
        for *_, search, points in asked:
            search.tell(-gains[start : start + len(points)])  # DIRECT minimizes
            start += len(points)
    maps = np.zeros((num_targets, *size), dtype=np.float64)
    for t, w, search in searches:
        kernels = gaussian_kernels(search.points, np.full(search.evaluations, widths[t, w]), size)
        gains = -search.values
        density = np.tensordot(gains - gains.min(), kernels.astype(np.float64), axes=1)
        peak = density.max()
        maps[t] += density / peak if peak > 0 else density
    return maps


def _gains(image: np.ndarray, score_fn: ScoreFn, centres: np.ndarray, sigma: np.ndarray, target: np.ndarray,
           size: tuple[int, int], max_images: int, per_evaluation: int) -> np.ndarray:
    """Per kernel: its target's score with the kernel kept, minus with it deleted if ``per_evaluation`` is 2."""
    gains = np.empty(len(centres))
    step = max(1, max_images // per_evaluation)
    for start in range(0, len(centres), step):
        kernels = gaussian_kernels(centres[start : start + step], sigma[start : start + step], size)[:, None]
        kept = image[None] * kernels
        perturbed = (np.concatenate([kept, image[None] * (1.0 - kernels)]) if per_evaluation == 2 else kept)
        scores = np.asarray(score_fn(perturbed.astype(np.float32)), dtype=np.float64)
        n = len(kernels)
        rows = np.arange(n)
        picked = target[start : start + n]
        gains[start : start + n] = scores[rows, picked]
        if per_evaluation == 2:
            gains[start : start + n] -= scores[n + rows, picked]
    return gains
