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

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from otx_xai.explain.black_box.masks import RiseMasks, rise_masks
from otx_xai.explain.black_box.presets import BlackBoxConfig

ScoreStream = Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]
"""Batches of perturbed preprocessed images (n, 3, h, w) float32 → each batch's scores (n, T), one column
per target, in order; it takes the next batch only when it has room (an IR: while others are in flight)
and is done reading a batch once it takes the next but one (an IR copies it into its request at once)."""


def rise_map_groups(image: np.ndarray, score_stream: ScoreStream, masks: RiseMasks, batch_size: int,
                    group_size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """RISE maps of one preprocessed image (3, h, w), ``group_size`` targets at a time: (first target,
    float32 maps (g, h, w)) per group, every target once, in order.

    The masked images are made batch by batch as ``score_stream`` takes them, and each batch's
    ``scores.T @ masks`` (float32, BLAS) is summed as its scores arrive, while later batches run: the
    first group's maps cost no pass of their own. More targets than ``group_size`` (e.g. every class of
    a 1000-class model, 200 MB of float32 maps at 224 px) keep only the scores (masks × targets) and
    sum the other groups after the inference, regenerating the masks, so at most ``group_size`` maps
    are held at once.
    """
    height, width = masks.input_size
    if image.shape[-2:] != (height, width):
        raise ValueError(f"RISE masks are {height}×{width} but the image is {image.shape[-2]}×{image.shape[-1]}")
    in_flight: deque[np.ndarray] = deque()
    buffers: dict[int, np.ndarray] = {}  # two perturbed batches, reused in turn (see ScoreStream)

    def perturbed() -> Iterator[np.ndarray]:
        for index, chunk in enumerate(masks.chunks(batch_size)):
            in_flight.append(chunk)
            slot = index % 2
            if slot not in buffers or len(buffers[slot]) != len(chunk):
                buffers[slot] = np.empty((len(chunk), *image.shape), dtype=np.float32)
            yield np.multiply(image[None], chunk[:, None], out=buffers[slot])

    group: int | None = None
    first: np.ndarray | None = None
    kept: list[np.ndarray] = []  # every batch's scores, when some targets wait for a later pass
    for batch_scores in score_stream(perturbed()):
        scores = np.asarray(batch_scores, dtype=np.float32)
        chunk = in_flight.popleft()
        if group is None:
            group = min(scores.shape[1], group_size or scores.shape[1])
        part = scores[:, :group].T @ chunk.reshape(len(chunk), -1)
        first = part if first is None else np.add(first, part, out=first)
        if scores.shape[1] > group:
            kept.append(scores[:, group:])
    assert first is not None and group is not None  # masks are never empty
    coverage = np.maximum(masks.coverage, np.float32(1e-12))
    yield 0, (first / coverage).reshape(-1, height, width)
    if not kept:
        return
    rest = np.concatenate(kept)
    for start in range(0, rest.shape[1], group):
        columns = rest[:, start : start + group]
        total = np.zeros((columns.shape[1], height * width), dtype=np.float32)
        row = 0
        for chunk in masks.chunks(batch_size):
            total += columns[row : row + len(chunk)].T @ chunk.reshape(len(chunk), -1)
            row += len(chunk)
        yield group + start, (total / coverage).reshape(-1, height, width)


def rise_saliency(image: np.ndarray, score_stream: ScoreStream, masks: RiseMasks, batch_size: int,
                  group_size: int | None = None) -> np.ndarray:
    """RISE maps (T, h, w) float32 of one preprocessed image (3, h, w): ``rise_map_groups`` joined."""
    return np.concatenate([maps for _, maps in rise_map_groups(image, score_stream, masks, batch_size,
                                                               group_size)])


def targets_per_group(memory_mb: float, size: tuple[int, int]) -> int:
    """How many float32 maps of ``size`` fit in ``memory_mb`` (at least one)."""
    return max(1, int(memory_mb * 2**20) // (4 * size[0] * size[1]))


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
                "prob": c.prob, "seed": c.seed, "batch_size": c.batch_size, "map_memory_mb": c.map_memory_mb,
                "inferences_per_image": c.masks + 1}
