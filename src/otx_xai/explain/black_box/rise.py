"""RISE (Petsiuk et al. 2018): the saliency of a pixel is the model's score averaged over the random
masks that keep it.

For masks M_i and the class scores s_i = f(image ⊙ M_i), the map of class c is

    S_c(x) = Σ_i s_i[c] · M_i(x) / Σ_i M_i(x)

i.e. the per-pixel coverage Σ_i M_i(x) is the normalizer: the Monte-Carlo estimate of
E[f(image ⊙ M) | M(x) = 1]. (The paper divides by N · p, the coverage's expectation; dividing by the
realized coverage removes the noise of uneven coverage, most visible at the borders.) Masks multiply
the model's preprocessed input, so a masked pixel is the normalization mean (a neutral grey).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from otx_xai.explain.black_box.masks import RiseMasks, rise_masks
from otx_xai.explain.black_box.presets import BlackBoxConfig

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Perturbed preprocessed images (N, 3, h, w) float32 → scores (N, T), one column per target."""


def rise_saliency(image: np.ndarray, score_fn: ScoreFn, masks: RiseMasks, batch_size: int) -> np.ndarray:
    """RISE maps (T, h, w) float64 of one preprocessed image (3, h, w), masks ``batch_size`` at a time."""
    height, width = masks.input_size
    if image.shape[-2:] != (height, width):
        raise ValueError(f"RISE masks are {height}×{width} but the image is {image.shape[-2]}×{image.shape[-1]}")
    weighted: np.ndarray | None = None
    coverage = np.zeros(height * width, dtype=np.float64)
    for chunk in masks.chunks(batch_size):
        scores = np.asarray(score_fn(image[None] * chunk[:, None]), dtype=np.float64)  # (n, T)
        flat = chunk.reshape(len(chunk), -1).astype(np.float64)
        weighted = scores.T @ flat if weighted is None else weighted + scores.T @ flat
        coverage += flat.sum(axis=0)
    assert weighted is not None  # masks are never empty
    return (weighted / np.maximum(coverage, 1e-12)).reshape(-1, height, width)


class RiseMaskedMethod:
    """What RISE and D-RISE share: their masks, made once per input size (the seed fixes them), and the
    settings the index records. Needs ``name`` and ``config`` (a BlackBoxConfig)."""

    name: str
    config: BlackBoxConfig
    _masks: RiseMasks | None = None

    def masks(self, size: tuple[int, int]) -> RiseMasks:
        c = self.config
        if self._masks is None or self._masks.input_size != size:
            self._masks = rise_masks(c.masks, size, c.num_cells, c.prob, c.seed)
        return self._masks

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {"method": self.name, "preset": c.preset, "num_masks": c.masks, "num_cells": c.num_cells,
                "prob": c.prob, "seed": c.seed, "batch_size": c.batch_size, "inferences_per_image": c.masks + 1}
