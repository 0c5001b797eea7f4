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
farthest from every sample. Each search is a job of ``job_scheduler.run_jobs``: on an IR the searches of
all targets, widths (and images: ``aise_jobs`` per image, one ``run_jobs`` call) run side by side, a
search asking for its next round as soon as its last one is scored; on torch, the ready searches' rounds
share a batch.

``scores_of(runner outputs of N perturbed images) -> scores (N, T)`` (or, for ``aise_saliency``,
``score_fn(perturbed images (N, 3, h, w)) -> scores (N, T)``) is all the core knows of the model:
classification passes class scores, detection per-box scores (IoU × class score of the best-matching
detection) and per-target ``bounds`` / ``kernel_widths`` (around each box).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from otx_xai.explain.black_box.direct import DirectSearch
from otx_xai.explain.black_box.job_scheduler import run_jobs

ScoreFn = Callable[[np.ndarray], np.ndarray]
ScoresOf = Callable[[dict[str, np.ndarray]], np.ndarray]

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


class AiseSearch:
    """One DIRECT search (a ``job_scheduler.Job``): where a Gaussian kernel of one width moves one target's
    score most in one image."""

    def __init__(self, image: np.ndarray, target: int, width: float, search: DirectSearch, scores_of: ScoresOf,
                 per_evaluation: int) -> None:
        self.image, self.target, self.width, self.search = image, target, float(width), search
        self.scores_of, self.per_evaluation = scores_of, per_evaluation
        self.size = (int(image.shape[-2]), int(image.shape[-1]))

    def ask(self) -> np.ndarray | None:
        """The perturbed images of the search's next round (kept, then deleted), None once done."""
        points = self.search.ask()
        if not len(points):
            return None
        kernels = gaussian_kernels(points, np.full(len(points), self.width), self.size)[:, None]
        kept = self.image[None] * kernels
        perturbed = np.concatenate([kept, self.image[None] * (1.0 - kernels)]) if self.per_evaluation == 2 else kept
        return perturbed.astype(np.float32)

    def tell(self, outputs: dict[str, np.ndarray]) -> None:
        scores = np.asarray(self.scores_of(outputs), dtype=np.float64)[:, self.target]
        count = len(scores) // self.per_evaluation
        gains = scores[:count] - (scores[count:] if self.per_evaluation == 2 else 0.0)
        self.search.tell(-gains)  # DIRECT minimizes

    def density(self) -> np.ndarray:
        """The search's kernels weighted by their gain over its lowest, scaled to a peak of 1 (h, w)."""
        kernels = gaussian_kernels(self.search.points, np.full(self.search.evaluations, self.width), self.size)
        gains = -self.search.values
        density = np.tensordot(gains - gains.min(), kernels.astype(np.float64), axes=1)
        peak = density.max()
        return density / peak if peak > 0 else density


def aise_jobs(
    image: np.ndarray,
    scores_of: ScoresOf,
    num_targets: int,
    iterations: int,
    kernel_widths: Sequence[float] | np.ndarray,
    bounds: np.ndarray | None = None,
    epsilon: float = 0.1,
    objective: str = KEPT_MINUS_DELETED,
) -> list[AiseSearch]:
    """The searches of one preprocessed image (3, h, w), one per target and kernel width; run them with
    ``run_jobs`` and read the maps with ``aise_maps``.

    Args:
        scores_of: the runner's outputs of N perturbed images → scores (N, num_targets).
        iterations: evaluations per target and kernel width (each costs ``images_per_evaluation(objective)``).
        kernel_widths: (W,) for every target, or (T, W) per target; fractions of the input side.
        bounds: (T, 2, 2) per target ``[[y_low, x_low], [y_high, x_high]]`` in [0, 1] where kernel
            centres may go; None: anywhere.
        epsilon: DIRECT's required relative improvement.
        objective: ``"kept_minus_deleted"`` (kernel kept minus kernel deleted) or ``"kept"`` (kernel kept).
    """
    per_evaluation = images_per_evaluation(objective)
    widths = np.asarray(kernel_widths, dtype=np.float64)
    if widths.ndim == 1:
        widths = np.tile(widths, (num_targets, 1))
    if bounds is None:
        bounds = np.tile(np.array([[0.0, 0.0], [1.0, 1.0]]), (num_targets, 1, 1))
    return [AiseSearch(image, t, widths[t, w], DirectSearch(bounds[t][0], bounds[t][1], iterations, epsilon),
                       scores_of, per_evaluation)
            for t in range(num_targets) for w in range(widths.shape[1])]


def aise_maps(searches: Sequence[AiseSearch], num_targets: int, size: tuple[int, int]) -> np.ndarray:
    """AISE maps (T, h, w) float64 of finished searches of one image (h, w = ``size``): per target, its
    widths' densities summed."""
    maps = np.zeros((num_targets, *size), dtype=np.float64)
    for search in searches:
        maps[search.target] += search.density()
    return maps


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
    """AISE maps (T, h, w) float64 of one preprocessed image (3, h, w), scored by ``score_fn``: perturbed
    images (N, 3, h, w) → scores (N, num_targets), at most ``max_images`` a call; the other arguments as
    ``aise_jobs``'."""
    searches = aise_jobs(image, lambda outputs: outputs["scores"], num_targets, iterations, kernel_widths,
                         bounds, epsilon, objective)
    run_jobs(searches, lambda images: {"scores": np.asarray(score_fn(images))}, max_images)
    return aise_maps(searches, num_targets, (int(image.shape[-2]), int(image.shape[-1])))
