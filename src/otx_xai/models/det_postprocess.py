"""Traceable detection post-processing: top-k candidates, class-aware NMS, fixed-size padded output.

Everything is batched tensor algebra with shapes fixed by the input size (no per-image Python loop,
no data-dependent shapes), so the same code runs in torch and, traced, in the OpenVINO IR.
NMS is Cluster-NMS (Zheng et al., 2021): Fast-NMS (YOLACT) iterated; each iteration lets only the boxes
kept so far suppress, and the fixed point is exactly greedy NMS. ``nms_iterations`` bounds the loop;
on the rare chain longer than that the result is Fast-NMS-like (it may suppress a little more).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor


def frozen_size(tensor: Tensor, start: int = 0) -> tuple[int, ...]:
    """``tensor.shape[start:]`` as Python ints. Inside a trace they become constants of the IR, which
    has a fixed input size (only its batch is dynamic): never pass the batch dimension."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        return tuple(int(size) for size in tensor.shape[start:])


def clip_boxes(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Boxes (..., 4) clipped to an image of ``size`` (h, w)."""
    x = boxes[..., 0::2].clamp(0.0, float(size[1]))
    y = boxes[..., 1::2].clamp(0.0, float(size[0]))
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def box_iou(first: Tensor, second: Tensor) -> Tensor:
    """IoU of every box of ``first`` (B, n, 4) with every box of ``second`` (B, m, 4), per image: (B, n, m)."""
    area_first = (first[..., 2] - first[..., 0]).clamp(min=0) * (first[..., 3] - first[..., 1]).clamp(min=0)
    area_second = (second[..., 2] - second[..., 0]).clamp(min=0) * (second[..., 3] - second[..., 1]).clamp(min=0)
    top_left = torch.maximum(first[:, :, None, :2], second[:, None, :, :2])
    bottom_right = torch.minimum(first[:, :, None, 2:], second[:, None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_first[:, :, None] + area_second[:, None, :] - inter).clamp(min=1e-6)


def pairwise_iou(boxes: Tensor) -> Tensor:
    """IoU of every pair of boxes within each image: (B, k, 4) → (B, k, k)."""
    return box_iou(boxes, boxes)


def cluster_nms_keep(boxes: Tensor, labels: Tensor, valid: Tensor, iou_thresh: float, iterations: int) -> Tensor:
    """Which of the score-sorted candidates (B, k) survive class-aware NMS."""
    count = boxes.shape[1]
    earlier = torch.ones(count, count, dtype=torch.bool, device=boxes.device).triu(diagonal=1)
    overlap = (pairwise_iou(boxes) > iou_thresh) & (labels[:, :, None] == labels[:, None, :]) & earlier
    keep = valid
    for _ in range(iterations):
        suppressed = (overlap & keep[:, :, None]).any(dim=1)
        keep = valid & ~suppressed
    return keep


def select_detections(
    boxes: Tensor,
    scores: Tensor,
    score_thresh: float,
    iou_thresh: float,
    max_detections: int,
    pre_nms_top_k: int = 300,
    nms_iterations: int = 4,
) -> tuple[Tensor, Tensor]:
    """Detections padded to ``max_detections`` per image, best first.

    Args:
        boxes: (B, M, 4) decoded boxes, one per anchor.
        scores: (B, M, K) per-anchor class scores.

    Returns:
        bboxes (B, N, 5) float ``x1, y1, x2, y2, score`` and labels (B, N) int64; padding rows are zeros
        with label -1.
    """
    bboxes, labels, _ = select_detections_with_anchors(boxes, scores, score_thresh, iou_thresh, max_detections,
                                                       pre_nms_top_k, nms_iterations)
    return bboxes, labels


def select_detections_with_anchors(
    boxes: Tensor,
    scores: Tensor,
    score_thresh: float,
    iou_thresh: float,
    max_detections: int,
    pre_nms_top_k: int = 300,
    nms_iterations: int = 4,
) -> tuple[Tensor, Tensor, Tensor]:
    """``select_detections`` plus, per detection row, the anchor (index into M) whose candidate NMS kept:
    (B, N) int64, 0 on padding rows (their label -1 says they are padding)."""
    num_classes = scores.shape[2]
    flat = scores.flatten(1)  # (B, M·K), index = anchor · K + class
    top_k = min(pre_nms_top_k, frozen_size(flat, 1)[0])
    top_scores, top_index = flat.topk(top_k, dim=1)
    labels = top_index % num_classes
    anchor = torch.div(top_index, num_classes, rounding_mode="floor")
    top_boxes = torch.gather(boxes, 1, anchor.unsqueeze(-1).expand(-1, -1, 4))
    keep = cluster_nms_keep(top_boxes, labels, top_scores > score_thresh, iou_thresh, nms_iterations)
    kept_scores = torch.where(keep, top_scores, torch.zeros_like(top_scores))
    final = min(max_detections, top_k)
    out_scores, order = kept_scores.topk(final, dim=1)
    out_boxes = torch.gather(top_boxes, 1, order.unsqueeze(-1).expand(-1, -1, 4))
    out_labels = torch.gather(labels, 1, order)
    present = out_scores > 0
    out_boxes = out_boxes * present.unsqueeze(-1).to(out_boxes.dtype)
    out_labels = torch.where(present, out_labels, torch.full_like(out_labels, -1))
    out_anchors = torch.where(present, torch.gather(anchor, 1, order), torch.zeros_like(out_labels))
    bboxes = torch.cat([out_boxes, out_scores.unsqueeze(-1)], dim=-1)
    if final < max_detections:
        bboxes = F.pad(bboxes, (0, 0, 0, max_detections - final))
        out_labels = F.pad(out_labels, (0, max_detections - final), value=-1)
        out_anchors = F.pad(out_anchors, (0, max_detections - final))
    return bboxes, out_labels.to(torch.int64), out_anchors.to(torch.int64)
