"""Occlusion (Zeiler & Fergus 2014) as captum defines it: a window slid with a stride over the input and
set to a baseline; a pixel's attribution is the class score's drop, averaged over the windows covering it.

For windows W_k (captum's placement: the first at the origin, then every ``stride`` pixels until the input
is covered, the last one cut off at the border when the stride does not divide the rest) and the class
scores s of the image and s_k of the image with W_k set to the baseline, the map of class c is

    A_c(x) = Σ_{k: x ∈ W_k} (s[c] − s_k[c]) / |{k: x ∈ W_k}|

The baseline is 0 in the model's input space, i.e. the preprocessing mean (a neutral grey), the same
value a RISE mask leaves. Windows cover all channels. Because the windows form a grid of rectangles the
sum is separable: A_c = (R_y · D_c · R_xᵀ) / (R_y·1)(R_x·1)ᵀ with D_c the (rows × columns) grid of drops
and R_y, R_x the 0/1 cover matrices of the window rows and columns (two small BLAS products per class).
The score is the one RISE uses: softmax (sigmoid for a multilabel model) of the logits.
Cost: one inference per window plus one, e.g. 13 × 13 + 1 = 170 at 224 px, window 32, stride 16. The
occluded copies of a batch's images are streamed to the model (``scoring.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from otx_xai.explain.black_box.classification import class_scores
from otx_xai.explain.black_box.inference_copy import InferenceCopies, copy_runner
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import ModelRunner, runner_batch
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.perturbation.class_maps import classes_to_explain, uint8_class_maps
from otx_xai.explain.methods.perturbation.scoring import ToScores, score_perturbations


def window_starts(side: int, window: int, stride: int) -> np.ndarray:
    """captum's window starts along one axis: ceil((side − window) / stride) + 1 of them, ``stride`` apart."""
    return np.arange(math.ceil((side - window) / stride) + 1) * stride


@dataclass(frozen=True)
class OcclusionGrid:
    """The windows slid over an (h, w) input; a window larger than the input is clipped to it."""

    size: tuple[int, int]
    window: tuple[int, int]
    stride: tuple[int, int]

    @classmethod
    def square(cls, size: tuple[int, int], window: int, stride: int) -> OcclusionGrid:
        clipped = (min(window, size[0]), min(window, size[1]))
        return cls(size, clipped, (min(stride, clipped[0]), min(stride, clipped[1])))

    @property
    def starts(self) -> tuple[np.ndarray, np.ndarray]:
        return (window_starts(self.size[0], self.window[0], self.stride[0]),
                window_starts(self.size[1], self.window[1], self.stride[1]))

    def __len__(self) -> int:
        ys, xs = self.starts
        return len(ys) * len(xs)

    def cover(self, axis: int) -> np.ndarray:
        """0/1 (side, windows along ``axis``) float32: which window rows (columns) cover each pixel row (column)."""
        starts = self.starts[axis]
        pixels = np.arange(self.size[axis])[:, None]
        return ((pixels >= starts[None]) & (pixels < starts[None] + self.window[axis])).astype(np.float32)

    def occlude(self, image: np.ndarray, start: int, stop: int, out: np.ndarray, baseline: float = 0.0) -> None:
        """Copies of ``image`` (3, h, w) with windows ``start:stop`` (row-major) set to ``baseline``, into ``out``."""
        ys, xs = self.starts
        out[...] = image[None]
        for row, k in enumerate(range(start, stop)):
            y, x = ys[k // len(xs)], xs[k % len(xs)]
            out[row, :, y : y + self.window[0], x : x + self.window[1]] = baseline

    def paint(self, drops: np.ndarray) -> np.ndarray:
        """Maps (t, h, w) float32 from the drops (t, windows) in window order: mean drop of the covering windows."""
        ys, xs = self.starts
        cover_y, cover_x = self.cover(0), self.cover(1)
        grid = drops.reshape(len(drops), len(ys), len(xs)).astype(np.float32)
        total = np.matmul(np.matmul(cover_y, grid), cover_x.T)
        count = np.outer(cover_y.sum(axis=1), cover_x.sum(axis=1))
        return total / count


def occlusion_drops(images: np.ndarray, reference: np.ndarray, grid: OcclusionGrid, run: ModelRunner,
                    to_scores: ToScores, batch_size: int, baseline: float = 0.0) -> list[np.ndarray]:
    """Per image (3, h, w), the drops (K, windows) float64 of its reference scores (K,) when each window is
    occluded; the occluded copies of all images are streamed to ``run`` ``batch_size`` at a time."""
    def build(b: int, start: int, stop: int, out: np.ndarray) -> None:
        grid.occlude(images[b], start, stop, out, baseline)

    scores = score_perturbations([len(grid)] * len(images), build, run, to_scores, images.shape[1:], batch_size)
    return [(reference[b][None] - s).T for b, s in enumerate(scores)]


class Occlusion:
    """Occlusion over a classifier: one pass of the windows serves every class; only the asked ones are painted."""

    name = "Occlusion"

    def __init__(self, config: BlackBoxConfig) -> None:
        self.config = config
        self._copies = InferenceCopies()

    def torch_runner(self, model: Any, batch_size: int) -> ModelRunner:
        """A checkpoint's model run on its inference copy (``copy_runner``): the same scores, faster."""
        return copy_runner(self._copies, model, batch_size)

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {"method": self.name, "preset": c.preset, "window": c.occlusion_window, "stride": c.occlusion_stride,
                "baseline": "preprocessing mean", "batch_size": c.batch_size}

    def grid(self, size: tuple[int, int]) -> OcclusionGrid:
        return OcclusionGrid.square(size, self.config.occlusion_window, self.config.occlusion_stride)

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        outputs = run(images)
        scores = class_scores(outputs["logits"], model.multilabel)
        grid = self.grid((int(images.shape[-2]), int(images.shape[-1])))

        def to_scores(outputs: dict[str, np.ndarray]) -> np.ndarray:
            return class_scores(outputs["logits"], model.multilabel)

        drops = occlusion_drops(images, scores, grid, run, to_scores, runner_batch(run, self.config.batch_size))
        painters = [lambda classes, d=d: grid.paint(d[classes]) for d in drops]
        classes = classes_to_explain(scores, model, config, targets)
        maps = uint8_class_maps(painters, classes, scores.shape[1], grid.size)
        return {**outputs, "saliency_map": maps}


FOR_TASK = {"classification": Occlusion}
