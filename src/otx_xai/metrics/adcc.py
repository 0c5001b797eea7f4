"""ADCC: Average Drop, Coherency, Complexity (Poppi et al., "Revisiting the Evaluation of Class
Activation Mapping for Explainability", CVPR-W 2021), for one image and one target class.

With ``s`` the saliency map normalized to [0, 1] (see ``normalize_map``; resized to the image if needed):

* explanation map ``E = round(image * s)`` per pixel and channel, as uint8;
* ``average_drop = max(0, y - o) / y`` with ``y`` / ``o`` the target score on the image / on ``E``
  (0 when ``y <= 0``: there is no confidence to drop);
* ``coherency = (cc + 1) / 2`` with ``cc`` the Pearson correlation between ``s`` and
  ``explain_fn(E, target)`` (as in the paper, mapped to [0, 1]); when a map is constant the correlation
  is undefined: ``cc = 1`` if both maps are constant, else ``cc = 0``;
* ``complexity = sum(|s|) / (H * W)``, the mean of ``s``;
* ``adcc = 3 / (1 / coherency + 1 / (1 - complexity) + 1 / (1 - average_drop))``, their harmonic
  mean, and 0 when any of the three terms is 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from otx_xai.metrics.insertion_deletion import ScoreFn, normalize_map, resize_map, target_scores

ExplainFn = Callable[[np.ndarray, int], np.ndarray]
"""Maps (image (H, W, 3) uint8, target class) to that image's saliency map for the class, 2-D."""


def explanation_image(image: np.ndarray, saliency01: np.ndarray) -> np.ndarray:
    """The image masked by a [0, 1] map, rounded to uint8."""
    masked = np.asarray(image, dtype=np.float64) * saliency01[..., None]
    return np.clip(np.rint(masked), 0, 255).astype(np.uint8)


def average_drop(full_score: float, masked_score: float) -> float:
    """Relative score drop ``max(0, y - o) / y``; 0 when ``y <= 0``."""
    if full_score <= 0:
        return 0.0
    return max(0.0, full_score - masked_score) / full_score


def coherency(saliency01: np.ndarray, saliency_on_explanation: np.ndarray) -> float:
    """Pearson correlation of the two maps mapped to [0, 1] as ``(cc + 1) / 2``."""
    a = np.asarray(saliency01, dtype=np.float64).ravel()
    b = np.asarray(saliency_on_explanation, dtype=np.float64).ravel()
    a_const, b_const = a.min() == a.max(), b.min() == b.max()
    if a_const or b_const:
        cc = 1.0 if a_const and b_const else 0.0
    else:
        cc = float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
    return (cc + 1.0) / 2.0


def complexity(saliency01: np.ndarray) -> float:
    """L1 norm of the [0, 1] map divided by its number of pixels."""
    arr = np.asarray(saliency01, dtype=np.float64)
    return float(np.abs(arr).sum() / arr.size)


def adcc_score(coherency_value: float, complexity_value: float, average_drop_value: float) -> float:
    """Harmonic mean of coherency, 1 - complexity and 1 - average drop; 0 when any term is 0."""
    terms = (coherency_value, 1.0 - complexity_value, 1.0 - average_drop_value)
    if min(terms) <= 0:
        return 0.0
    return 3.0 / sum(1.0 / t for t in terms)


def adcc(
    image: np.ndarray,
    saliency: np.ndarray,
    target: int,
    score_fn: ScoreFn,
    explain_fn: ExplainFn,
) -> dict[str, float]:
    """ADCC and its three parts; runs ``score_fn`` once (2 images) and ``explain_fn`` once."""
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"adcc image must be (H, W, C) uint8, got shape {image.shape} dtype {image.dtype}")
    size = image.shape[:2]
    s = normalize_map(resize_map(saliency, size))
    explanation = explanation_image(image, s)
    full, masked = target_scores(score_fn, [image, explanation], target, batch_size=2)
    drop = average_drop(float(full), float(masked))
    coh = coherency(s, resize_map(np.asarray(explain_fn(explanation, target)), size))
    com = complexity(s)
    return {"adcc": adcc_score(coh, com, drop), "average_drop": drop, "coherency": coh, "complexity": com}
