"""The PredictionBatch of a detector, from outputs named as in the IR (bboxes, labels, saliency_map, ...).

Boxes come in model-input pixels, padded with label -1 / score 0 rows; here they are cut to the real
detections and mapped back to original-image pixels by undoing the resize (or letterbox) recorded in
each ImageInfo. ``scores`` (B, K) is the per-class maximum box score (0 for a class with no box).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from otx_xai.explain.entity import ImageInfo, ModelInfo, PredictionBatch, explain_outputs, to_numpy


def to_original_pixels(boxes: np.ndarray, info: ImageInfo) -> np.ndarray:
    """Boxes (N, 4) from input pixels to original-image pixels, clipped to the image."""
    (orig_h, orig_w), (valid_h, valid_w) = info.original_size, info.valid_size
    scale = np.array([orig_w / valid_w, orig_h / valid_h] * 2, dtype=np.float32)
    return np.clip(boxes * scale, 0.0, np.array([orig_w, orig_h] * 2, dtype=np.float32))


def detection_batch(outputs: Mapping[str, Any], infos: list[ImageInfo], model: ModelInfo) -> PredictionBatch:
    """A PredictionBatch from detector outputs: boxes per image in original pixels, class scores."""
    bboxes = to_numpy(outputs["bboxes"]).astype(np.float32)
    labels = to_numpy(outputs["labels"]).astype(np.int64)
    scores = np.zeros((len(infos), len(model.label_names)), dtype=np.float32)
    per_box = to_numpy(outputs["box_saliency_map"]) if outputs.get("box_saliency_map") is not None else None
    boxes, box_labels, box_scores, box_maps = [], [], [], []
    for index, info in enumerate(infos):
        keep = (labels[index] >= 0) & (labels[index] < scores.shape[1]) & (bboxes[index, :, 4] > 0)
        kept_labels, kept_scores = labels[index][keep], bboxes[index, keep, 4]
        np.maximum.at(scores[index], kept_labels, kept_scores)
        boxes.append(to_original_pixels(bboxes[index, keep, :4], info))
        box_labels.append(kept_labels)
        box_scores.append(kept_scores)
        if per_box is not None:
            box_maps.append(per_box[index][keep].astype(np.uint8, copy=False))
    return PredictionBatch(infos=infos, model=model, scores=scores, boxes=boxes, box_labels=box_labels,
                           box_scores=box_scores, box_saliency_map=box_maps if per_box is not None else None,
                           **explain_outputs(outputs))
