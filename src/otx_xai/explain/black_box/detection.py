"""Black-box detection explanation: per-box maps from a box-map function, returned as the outputs a
white-box detector gives (``saliency_map``, ``box_saliency_map``), so the rest of the pipeline (entity,
sink, dump, index, gallery) is the same.

A box-map function takes one model input (3, H, W) and the boxes to explain (T, 4 in input pixels, labels
(T,)) and returns float maps (T, H, W), larger = more salient (D-RISE, AISE). The boxes explained are the
image's detections scoring above a threshold (the ones the index lists and the dump writes); every other
row, padding included, gets an all-zero map. The class map of label c is the score-weighted sum of its
boxes' maps, normalized (all zero for a label with no explained box).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from otx_xai.explain.black_box.detection_score import (
    RunBatches,
    box_similarity,
    image_detections,
    perturbed_batches,
)
from otx_xai.explain.saliency import normalize_to_uint8

BoxMapFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def drise_weights(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                  run_batches: RunBatches, fill: np.ndarray, batch_size: int) -> np.ndarray:
    """(n, T): the similarity of each masked image's detections to each target box (``box_similarity``)."""
    weights = []
    for outputs in run_batches(perturbed_batches(image, masks, fill, batch_size)):
        weights += [box_similarity(boxes, labels, found) for found in image_detections(outputs)]
    return np.stack(weights) if weights else np.zeros((0, len(boxes)))


def drise_maps(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, masks: np.ndarray,
               run_batches: RunBatches, fill: np.ndarray, batch_size: int) -> np.ndarray:
    """D-RISE (Petsiuk et al. 2021): the map of box t is Σ_n w[n, t] · mask_n / n_masks, w = ``drise_weights``:
    one pass of the masks explains every box of the image at once. (T, H, W) float."""
    weights = drise_weights(image, boxes, labels, masks, run_batches, fill, batch_size)
    return np.tensordot(weights, masks.astype(np.float64), axes=(0, 0)) / max(len(masks), 1)


def explain_detections(images: np.ndarray, outputs: dict[str, np.ndarray], num_classes: int,
                       box_maps: BoxMapFunction, threshold: float) -> dict[str, np.ndarray]:
    """``outputs`` (``bboxes`` (B, N, 5), ``labels`` (B, N) of ``images`` (B, 3, H, W)) plus uint8
    ``saliency_map`` (B, K, H, W) and ``box_saliency_map`` (B, N, H, W) from ``box_maps``."""
    bboxes, labels = np.asarray(outputs["bboxes"], dtype=np.float32), np.asarray(outputs["labels"])
    batch, rows = labels.shape
    height, width = images.shape[-2:]
    per_box = np.zeros((batch, rows, height, width), dtype=np.uint8)
    per_class = np.zeros((batch, num_classes, height, width), dtype=np.uint8)
    for image in range(batch):
        chosen = np.flatnonzero((labels[image] >= 0) & (labels[image] < num_classes)
                                & (bboxes[image, :, 4] > threshold))
        if not len(chosen):
            continue
        maps = box_maps(images[image], bboxes[image, chosen, :4], labels[image, chosen])
        totals = np.zeros((num_classes, height, width))
        for row, saliency in zip(chosen, maps, strict=True):
            per_box[image, row] = normalize_to_uint8(saliency)
            totals[labels[image, row]] += bboxes[image, row, 4] * saliency
        for label in np.unique(labels[image, chosen]):
            per_class[image, label] = normalize_to_uint8(totals[label])
    return {**outputs, "saliency_map": per_class, "box_saliency_map": per_box}
