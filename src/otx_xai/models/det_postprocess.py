"""Traceable detection post-processing: top-k candidates, class-aware NMS, fixed-size padded output.

Everything is batched tensor algebra with shapes fixed by the input size (no per-image Python loop,
no data-dependent shapes), so the same code runs in torch and, traced, in the OpenVINO IR.
NMS is Cluster-NMS (Zheng et al., 2021): Fast-NMS (YOLACT) iterated; each iteration lets only the boxes
kept so far suppress, and the fixed point is exactly greedy NMS. ``nms_iterations`` bounds the loop;
on the rare chain longer than that the result is Fast-NMS-like (it may suppress a little more).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from otx_xai.boxes import Detections, pairwise_iou
from otx_xai.tracing import frozen_size


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
    detections = detect(boxes, scores, score_thresh, iou_thresh, max_detections, pre_nms_top_k, nms_iterations)
    return detections.bboxes, detections.labels


def detect(
    boxes: Tensor,
    scores: Tensor,
    score_thresh: float,
    iou_thresh: float,
    max_detections: int,
    pre_nms_top_k: int = 300,
    nms_iterations: int = 4,
) -> Detections:
    """``select_detections`` with the candidates NMS chose from and which candidate each row is."""
    num_classes = scores.shape[2]
    flat = scores.flatten(1)  # (B, M·K), index = anchor · K + class
    top_k = min(pre_nms_top_k, frozen_size(flat, 1)[0])
    top_scores, top_index = flat.topk(top_k, dim=1)
    labels = top_index % num_classes
    anchor = torch.div(top_index, num_classes, rounding_mode="floor")
    top_boxes = torch.gather(boxes, 1, anchor.unsqueeze(-1).expand(-1, -1, 4))
    valid = top_scores > score_thresh
    keep = cluster_nms_keep(top_boxes, labels, valid, iou_thresh, nms_iterations)
    kept_scores = torch.where(keep, top_scores, torch.zeros_like(top_scores))
    final = min(max_detections, top_k)
    out_scores, order = kept_scores.topk(final, dim=1)
    out_boxes = torch.gather(top_boxes, 1, order.unsqueeze(-1).expand(-1, -1, 4))
    out_labels = torch.gather(labels, 1, order)
    present = out_scores > 0
    out_boxes = out_boxes * present.unsqueeze(-1).to(out_boxes.dtype)
    out_labels = torch.where(present, out_labels, torch.full_like(out_labels, -1))
    kept = torch.where(present, order, torch.zeros_like(order))
    bboxes = torch.cat([out_boxes, out_scores.unsqueeze(-1)], dim=-1)
    if final < max_detections:
        bboxes = F.pad(bboxes, (0, 0, 0, max_detections - final))
        out_labels = F.pad(out_labels, (0, max_detections - final), value=-1)
        kept = F.pad(kept, (0, max_detections - final))
    return Detections(bboxes, out_labels.to(torch.int64), kept.to(torch.int64), top_boxes, labels.to(torch.int64),
                      anchor.to(torch.int64), valid)
