"""What the per-class perturbation methods (Occlusion, LIME) share: which classes each image explains and
their float maps turned into the uint8 (B, K, h, w) maps every explain method returns, a chunk of
classes at a time (ALL on a 1000-class model never holds 1000 float maps of an image at once)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.base import normalize_map

CLASS_CHUNK = 64  # float maps of at most this many classes exist at once

ClassPainter = Callable[[np.ndarray], np.ndarray]
"""Classes (t,) of one image → their float maps (t, h, w)."""


def classes_to_explain(scores: np.ndarray, model: ModelInfo, config: ExplainConfig,
                       targets: list[list[int]] | None) -> list[list[int]]:
    """Per image, the classes asked: ``targets`` when given; every class for ALL; else the top class plus,
    for a multilabel model, every label scoring above ``predicted_maps_conf_thr``."""
    if targets is not None:
        return [sorted({int(c) for c in image_targets}) for image_targets in targets]
    if config.target_explain_group == TargetExplainGroup.ALL:
        return [list(range(scores.shape[1]))] * len(scores)
    chosen = []
    for row in scores:
        top = {int(np.argmax(row))}
        if model.multilabel:
            top |= {int(i) for i in np.flatnonzero(row > config.predicted_maps_conf_thr)}
        chosen.append(sorted(top))
    return chosen


def uint8_class_maps(painters: list[ClassPainter], classes: list[list[int]], num_classes: int,
                     size: tuple[int, int]) -> np.ndarray:
    """uint8 maps (B, K, h, w): image b's classes painted by ``painters[b]`` and min-max normalized one map
    at a time (``normalize_map``), ``CLASS_CHUNK`` classes per call; channels not explained stay zero."""
    maps = np.zeros((len(painters), num_classes, *size), dtype=np.uint8)
    for index, (paint, chosen) in enumerate(zip(painters, classes, strict=True)):
        for start in range(0, len(chosen), CLASS_CHUNK):
            chunk = np.asarray(chosen[start : start + CLASS_CHUNK], dtype=np.int64)
            floats = np.ascontiguousarray(paint(chunk), dtype=np.float32)
            maps[index, chunk] = normalize_map(torch.from_numpy(floats)[None])[0].numpy()
    return maps
