"""Boxes as tensors: IoU and clipping (traceable), and ``Detections``, what a detector's NMS selected (made
by ``models/det_postprocess``, read by the detector's box maps in ``explain/methods/forward/det_box_map``)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def clip_boxes(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Boxes (..., 4) clipped to an image of ``size`` (h, w)."""
    x = boxes[..., 0::2].clamp(0.0, float(size[1]))
    y = boxes[..., 1::2].clamp(0.0, float(size[0]))
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def box_iou(first: Tensor, second: Tensor) -> Tensor:
    """IoU of every box of ``first`` (B, n, 4) with every box of ``second`` (B, m, 4), per image: (B, n, m).

    Computed one coordinate at a time (each a contiguous (B, n, m) operation, not a broadcast over corners).
    """
    a = [first[..., i].unsqueeze(2) for i in range(4)]  # (B, n, 1)
    b = [second[..., i].unsqueeze(1) for i in range(4)]  # (B, 1, m)
    width = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp(min=0)
    height = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp(min=0)
    inter = width * height
    area_first = (a[2] - a[0]).clamp(min=0) * (a[3] - a[1]).clamp(min=0)
    area_second = (b[2] - b[0]).clamp(min=0) * (b[3] - b[1]).clamp(min=0)
    return inter / (area_first + area_second - inter).clamp(min=1e-6)


def pairwise_iou(boxes: Tensor) -> Tensor:
    """IoU of every pair of boxes within each image: (B, k, 4) → (B, k, k)."""
    return box_iou(boxes, boxes)


class Detections(NamedTuple):
    """What NMS selected, and from what.

    bboxes (B, N, 5) ``x1, y1, x2, y2, score`` and labels (B, N), padding rows zeros with label -1;
    kept (B, N): each row's index among the candidates (0 on padding rows). The candidates are the
    ``pre_nms_top_k`` best (anchor, class) pairs per image that entered NMS: their boxes (B, k, 4),
    labels (B, k), anchors (B, k, indices into M) and whether they scored above the threshold (B, k).
    """

    bboxes: Tensor
    labels: Tensor
    kept: Tensor
    candidate_boxes: Tensor
    candidate_labels: Tensor
    candidate_anchors: Tensor
    candidate_valid: Tensor
