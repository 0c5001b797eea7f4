"""What a black-box detection explainer asks of a detector: its detections on perturbed inputs, and how
well they still find a target box.

``run_batches`` is any function from an iterable of (n, 3, H, W) float32 input batches to their IR-named
outputs (``bboxes`` (n, N, 5), ``labels`` (n, N)) in order — a checkpoint's forward batch by batch, or an
IR's async request pipeline (``IRModel.infer_batches``) — so the masks of an image stream through the
model ``batch_size`` at a time whatever runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

RunBatches = Callable[[Iterable[np.ndarray]], Iterator[dict[str, np.ndarray]]]
Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes (m, 4) in input pixels, labels (m,), scores (m,)


def image_detections(outputs: dict[str, np.ndarray]) -> list[Detections]:
    """Per image of a batch, its real detections (padding rows dropped)."""
    bboxes, labels = np.asarray(outputs["bboxes"], dtype=np.float32), np.asarray(outputs["labels"])
    result = []
    for image_boxes, image_labels in zip(bboxes, labels, strict=True):
        keep = (image_labels >= 0) & (image_boxes[:, 4] > 0)
        result.append((image_boxes[keep, :4], image_labels[keep].astype(np.int64), image_boxes[keep, 4]))
    return result


def iou_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box of ``first`` (t, 4) with every box of ``second`` (m, 4): (t, m)."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area = lambda boxes: np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=-1)  # noqa: E731
    union = area(first)[:, None] + area(second)[None, :] - inter
    return inter / np.maximum(union, 1e-6)


def box_similarity(target_boxes: np.ndarray, target_labels: np.ndarray, found: Detections) -> np.ndarray:
    """How well a perturbed image's detections still find each target box: for target t, the best
    IoU(t, d) × score(d) over the detections d with t's label (0 when there is none) — openvino_xai's
    AISEDetection score, and D-RISE's similarity with its class term reduced to the label match. (t,)."""
    boxes, labels, scores = found
    if len(target_boxes) == 0 or len(boxes) == 0:
        return np.zeros(len(target_boxes), dtype=np.float64)
    same = target_labels[:, None] == labels[None, :]
    return (iou_matrix(target_boxes, boxes) * scores[None, :] * same).max(axis=1).astype(np.float64)


def perturbed_batches(image: np.ndarray, masks: np.ndarray, fill: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """``image`` (3, H, W, model input) kept where a mask (n, H, W, values in [0, 1]) is 1 and ``fill``
    (3,: the input value of a black pixel) where it is 0, ``batch_size`` masks at a time."""
    for start in range(0, len(masks), batch_size):
        chunk = masks[start:start + batch_size, None].astype(np.float32)
        yield np.ascontiguousarray(image[None] * chunk + fill[None, :, None, None] * (1.0 - chunk), dtype=np.float32)


def black_fill(mean: list[float], std: list[float]) -> np.ndarray:
    """The normalized input value of a black pixel (0 in 0..255 units): masking in input space is then
    multiplying the image by the mask, as RISE does."""
    return (-np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)).astype(np.float32)


def torch_run_batches(model: Any) -> RunBatches:
    """``run_batches`` of a LightningModule's plain forward (boxes and labels, no maps)."""
    def run(batches: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        for batch in batches:
            with torch.inference_mode():
                outputs = model(torch.from_numpy(batch))
            yield {name: value.cpu().numpy() for name, value in outputs.items()}
    return run
