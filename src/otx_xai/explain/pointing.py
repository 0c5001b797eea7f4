"""The pointing game on an explained image, for images whose ground-truth boxes are known."""

from __future__ import annotations

import cv2
import numpy as np

from otx_xai.explain.entity import ImageInfo
from otx_xai.metrics import pointing_game


def ground_truth_hits(class_maps: np.ndarray, info: ImageInfo) -> list[bool]:
    """One hit per ground-truth class of the image: does the peak of that class's map, resized to
    the original image, fall inside one of that class's boxes?"""
    if not info.gt_boxes or len(info.gt_labels) != len(info.gt_boxes):
        return []
    height, width = info.original_size
    hits = []
    for label in sorted(set(info.gt_labels)):
        if label >= class_maps.shape[0]:
            continue
        boxes = [box for box, lab in zip(info.gt_boxes, info.gt_labels, strict=True) if lab == label]
        resized = cv2.resize(class_maps[label], (width, height), interpolation=cv2.INTER_LINEAR)
        hits.append(pointing_game(resized, boxes))
    return hits
