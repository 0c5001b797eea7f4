"""How well a perturbed image's detections still find a target box: the score D-RISE and AISE weigh
masks by for detection.

For target box t (label c) and the detections of a perturbed image, the score is the best
IoU(t, d) × score(d) over the detections d labelled c, 0 when there is none — openvino_xai's
AISEDetection score, and D-RISE's similarity (Petsiuk et al. 2021) with its class-probability term
reduced to the label match (our detectors report one label and score per box, not a class vector).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from otx_xai.explain.black_box.rise import ScoreStream
from otx_xai.explain.black_box.runners import ModelRunner, stream_outputs

Found = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (m, 4) in input pixels, labels (m,), scores (m,)


def image_detections(outputs: dict[str, np.ndarray]) -> list[Found]:
    """Per image of a batch of IR-named detector outputs, its real detections (padding rows dropped)."""
    bboxes, labels = np.asarray(outputs["bboxes"], dtype=np.float32), np.asarray(outputs["labels"])
    found = []
    for image_boxes, image_labels in zip(bboxes, labels, strict=True):
        keep = (image_labels >= 0) & (image_boxes[:, 4] > 0)
        found.append((image_boxes[keep, :4], image_labels[keep].astype(np.int64), image_boxes[keep, 4]))
    return found


def iou_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box of ``first`` (t, 4) with every box of ``second`` (m, 4): (t, m)."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area_first = np.prod(np.clip(first[:, 2:] - first[:, :2], 0, None), axis=-1)
    area_second = np.prod(np.clip(second[:, 2:] - second[:, :2], 0, None), axis=-1)
    return inter / np.maximum(area_first[:, None] + area_second[None, :] - inter, 1e-6)


def box_similarity(target_boxes: np.ndarray, target_labels: np.ndarray, found: Found) -> np.ndarray:
    """(t,) the score of each target box in one image's detections ``found`` (see the module doc)."""
    boxes, labels, scores = found
    if len(target_boxes) == 0 or len(boxes) == 0:
        return np.zeros(len(target_boxes), dtype=np.float64)
    same = target_labels[:, None] == labels[None, :]
    return (iou_matrix(target_boxes, boxes) * scores[None, :] * same).max(axis=1).astype(np.float64)


def box_score_stream(run: ModelRunner, target_boxes: np.ndarray, target_labels: np.ndarray) -> ScoreStream:
    """(N, t) box scores batch by batch as the runner streams them (D-RISE: several batches in flight)."""
    def score_stream(batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for outputs in stream_outputs(run, batches):
            yield box_scores(outputs, target_boxes, target_labels)
    return score_stream


def box_scores(outputs: dict[str, np.ndarray], target_boxes: np.ndarray, target_labels: np.ndarray) -> np.ndarray:
    """(N, t) the target boxes' scores in each image of a batch of detector outputs."""
    return np.stack([box_similarity(target_boxes, target_labels, f) for f in image_detections(outputs)])
