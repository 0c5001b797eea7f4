"""Per-box maps of a detection batch: which boxes get one, their overlays, files and index records.

A detector that explains per box gives ``PredictionBatch.box_saliency_map``: per image one uint8 map per
detection, in the order of ``boxes`` (best first). Every box scoring above ``predicted_maps_conf_thr`` (the
boxes the index lists under ``detections``) is dumped as ``<image_id>_box_<k>_<label>_saliency_map.png``,
k = the box's index in the image's detections; its overlay outlines the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ImageInfo, PredictionBatch
from otx_xai.explain.saliency import overlay, postprocess


@dataclass
class BoxMap:
    """The map of one detection: k, its label index, score, box (original pixels) and the map itself."""

    box_index: int
    label: int
    score: float
    box: np.ndarray
    saliency_map: np.ndarray  # raw uint8 (h, w), or (H, W, 3) RGB when postprocessed


def select_box_maps(batch: PredictionBatch, index: int, config: ExplainConfig) -> list[BoxMap]:
    """The boxes of image ``index`` that get a map (score above the threshold; none for the IMAGE group),
    postprocessed like the class maps when the config says so."""
    if batch.box_saliency_map is None or batch.boxes is None or config.target_explain_group == TargetExplainGroup.IMAGE:
        return []
    info = batch.infos[index]
    selected = []
    for k, (box, label, score, saliency) in enumerate(zip(batch.boxes[index], batch.box_labels[index],
                                                          batch.box_scores[index], batch.box_saliency_map[index],
                                                          strict=True)):
        if score > config.predicted_maps_conf_thr:
            shown = postprocess(saliency, info, config) if config.postprocess else saliency
            selected.append(BoxMap(k, int(label), float(score), box, shown))
    return selected


def box_overlay(box_map: BoxMap, image: np.ndarray) -> np.ndarray:
    """The coloured map blended with the image, the box outlined in white."""
    blended = overlay(box_map.saliency_map, image)
    x1, y1, x2, y2 = (int(round(float(v))) for v in box_map.box)
    thickness = max(1, round(min(image.shape[:2]) / 150))
    return cv2.rectangle(blended, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), (255, 255, 255), thickness)


def peak_in_box(saliency: np.ndarray, box: np.ndarray, info: ImageInfo) -> bool:
    """Whether the hottest cell of a raw box map (h, w) falls inside ``box`` (original pixels)."""
    height, width = saliency.shape[:2]
    row, col = np.unravel_index(int(np.argmax(saliency)), (height, width))
    # the cell's centre, in original-image pixels (the map covers the model input; undo letterbox padding)
    (orig_h, orig_w), (valid_h, valid_w), (in_h, in_w) = info.original_size, info.valid_size, info.input_size
    y = (row + 0.5) / height * in_h * orig_h / valid_h
    x = (col + 0.5) / width * in_w * orig_w / valid_w
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])
