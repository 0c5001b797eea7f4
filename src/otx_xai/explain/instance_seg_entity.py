"""Reading instance segmentation outputs (named as in the IR) into a PredictionBatch.

Outputs: ``bboxes`` (B, N, 5: x1, y1, x2, y2, score), ``labels`` (B, N) and ``masks`` (B, N, H, W mask
probabilities) in model-input pixels; padded rows have score 0 and label -1. Boxes, labels, scores and
the maps are read as for a detector (``detection_batch``); each kept detection's mask becomes a bool
(H, W) mask at the original image size: the valid (non-letterbox) region of the input, resized back
and thresholded at ``MASK_THRESHOLD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from otx_xai.explain.detection_entity import detection_batch
from otx_xai.explain.entity import ImageInfo, ModelInfo, PredictionBatch, to_numpy

MASK_THRESHOLD = 0.5


def to_original_masks(masks: np.ndarray, info: ImageInfo) -> np.ndarray:
    """Mask probabilities (N, H_in, W_in) → bool (N, H, W) at the original image size."""
    height, width = info.original_size
    valid = masks[:, : info.valid_size[0], : info.valid_size[1]].astype(np.float32)
    out = np.zeros((len(valid), height, width), dtype=bool)
    for index, mask in enumerate(valid):
        out[index] = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR) > MASK_THRESHOLD
    return out


def instance_seg_batch(outputs: Mapping[str, Any], infos: list[ImageInfo], model: ModelInfo) -> PredictionBatch:
    """A PredictionBatch from Mask R-CNN outputs (bboxes, labels, masks[, saliency_map, ...])."""
    batch = detection_batch(outputs, infos, model)
    bboxes, labels, masks = (to_numpy(outputs[name]) for name in ("bboxes", "labels", "masks"))
    batch.masks = []
    for index, info in enumerate(infos):  # the rows detection_batch kept, in the same order
        keep = (labels[index] >= 0) & (labels[index] < len(model.label_names)) & (bboxes[index, :, 4] > 0)
        batch.masks.append(to_original_masks(masks[index, keep], info))
    return batch
