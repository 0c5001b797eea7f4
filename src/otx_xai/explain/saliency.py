"""From raw per-class maps to what a person sees: target selection, crop, resize, colormap, overlay.

One dtype per stage: raw maps are uint8 (h, w) at the feature-grid size; postprocessed maps are
uint8 (H, W, 3) RGB at the original image size. Nothing here knows which model or runtime made them.
"""

from __future__ import annotations

import cv2
import numpy as np

from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ImageInfo, PredictionBatch
from otx_xai.explain.select import EIGEN_CAM

MAP_PER_IMAGE = "map_per_image"
MapKey = int | str


def predicted_labels(batch: PredictionBatch, index: int, threshold: float) -> list[int]:
    """Label indices predicted for image ``index``: top-1 (multiclass), else every score > threshold."""
    if batch.box_labels is not None and batch.box_scores is not None:
        keep = batch.box_scores[index] > threshold
        return sorted({int(label) for label in batch.box_labels[index][keep]})
    scores = batch.scores[index]
    if batch.model.multilabel:
        return [int(i) for i in np.flatnonzero(scores > threshold)]
    return [int(np.argmax(scores))] if scores.size else []


def normalize_to_uint8(values: np.ndarray) -> np.ndarray:
    """Min-max scale an array to 0..255 uint8 (a constant array becomes zeros)."""
    values = values.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    return np.floor((values - low) / max(high - low, 1e-30) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def image_map(batch: PredictionBatch, index: int) -> np.ndarray:
    """One class-agnostic map: the model's own when its method is class-agnostic (Eigen-CAM: every channel
    holds it), else the activation map of the feature map, else the max over class maps."""
    if batch.model.explain_method == EIGEN_CAM and batch.saliency_map is not None:
        return batch.saliency_map[index][0]
    if batch.feature_map is not None:
        return normalize_to_uint8(batch.feature_map[index].mean(axis=0))
    return batch.saliency_map[index].max(axis=0)


def unread_outputs(config: ExplainConfig) -> set[str]:
    """Explain outputs that selecting maps under ``config`` never reads, so a runtime need not compute them:
    ``feature_map`` unless the target group is IMAGE (whose class-agnostic map is its activation map)."""
    return set() if config.target_explain_group == TargetExplainGroup.IMAGE else {"feature_map"}


def select_maps(batch: PredictionBatch, index: int, config: ExplainConfig) -> dict[MapKey, np.ndarray]:
    """Raw uint8 maps of image ``index`` for the configured target group."""
    group = config.target_explain_group
    if group == TargetExplainGroup.IMAGE:
        return {MAP_PER_IMAGE: image_map(batch, index)}
    maps = batch.saliency_map[index]
    if group == TargetExplainGroup.ALL:
        return {k: maps[k] for k in range(maps.shape[0])}
    return {k: maps[k] for k in predicted_labels(batch, index, config.predicted_maps_conf_thr)}


def crop_padding(saliency: np.ndarray, info: ImageInfo) -> np.ndarray:
    """Cut off the part of a raw map that covers letterbox padding (top-left anchored image)."""
    height, width = saliency.shape[:2]
    keep_h = max(1, round(height * info.valid_size[0] / info.input_size[0]))
    keep_w = max(1, round(width * info.valid_size[1] / info.input_size[1]))
    return saliency[:keep_h, :keep_w]


def colorize(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 map to ``size`` (H, W) and apply JET: (H, W, 3) uint8 RGB, red = most salient."""
    resized = cv2.resize(saliency, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(cv2.applyColorMap(resized, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def overlay(coloured: np.ndarray, image: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """Blend an RGB colour map with the RGB image it explains."""
    return cv2.addWeighted(image, 1.0 - weight, coloured, weight, 0.0)


def postprocess(saliency: np.ndarray, info: ImageInfo, config: ExplainConfig) -> np.ndarray:
    """A raw map as the user configured it: optionally cropped, then resized and coloured."""
    if config.crop_padded_map:
        saliency = crop_padding(saliency, info)
    return colorize(saliency, info.original_size)
