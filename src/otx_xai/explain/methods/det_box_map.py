"""Per-box DetClassProbabilityMap: for each detected box, the class probability of its label over the
anchors (points) that produced it.

A box's support is every anchor of every pyramid level whose decoded box overlaps the detected box with
IoU ≥ ``iou_thresh`` (weighted by that IoU), plus the anchor of the candidate NMS kept (weight 1). With
``iou_thresh`` = the detector's NMS threshold this holds every same-class candidate NMS merged into the box.
Per level the support is maxed over the anchors of a location and bilinearly resized to the middle
level's grid, then averaged over levels (as DetClassProbabilityMap treats the logits); the box's map is
DetClassProbabilityMap's float probability of the box's label times that support, min-max normalized
to uint8 per box. Padding rows (label −1) get all-zero maps. Fixed shapes throughout: it traces into the IR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from otx_xai.explain.methods.base import normalize_map
from otx_xai.models.det_postprocess import box_iou, frozen_size


class DetBoxProbabilityMap(nn.Module):
    """Per-box saliency (B, N, h, w) uint8 from DetClassProbabilityMap's float maps and the detections.

    Args:
        num_anchors: A per level (one int for every level, or one per level), as DetClassProbabilityMap.
        iou_thresh: the IoU with the detected box an anchor's decoded box needs to count.
    """

    name = "DetBoxProbabilityMap"

    def __init__(self, num_anchors: int | list[int], iou_thresh: float) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.iou_thresh = iou_thresh

    def _anchors(self, level: int) -> int:
        return self.num_anchors if isinstance(self.num_anchors, int) else self.num_anchors[level]

    def support(self, cls_levels: list[Tensor], decoded: Tensor, boxes: Tensor, anchors: Tensor) -> Tensor:
        """Float support (B, N, h, w) on the middle level's grid.

        Args:
            cls_levels: per level (B, A·C, H_l, W_l), only their grid sizes are read.
            decoded: (B, M, 4) every anchor's decoded box, torchvision's flat order (levels, then H, W, A).
            boxes: (B, N, 4) the detected boxes; anchors: (B, N) the anchor each was kept from.
        """
        iou = box_iou(boxes, decoded)  # (B, N, M)
        total = frozen_size(decoded, 1)[0]
        own = (torch.arange(total, device=decoded.device) == anchors.unsqueeze(-1)).to(iou.dtype)
        weight = torch.maximum(iou * (iou >= self.iou_thresh).to(iou.dtype), own)
        size = frozen_size(cls_levels[len(cls_levels) // 2], 2)
        per_level, start = [], 0
        for index, level in enumerate(cls_levels):
            height, width = frozen_size(level, 2)
            count = height * width * self._anchors(index)
            grid = weight[:, :, start:start + count].unflatten(2, (height, width, self._anchors(index)))
            start += count
            level_map = grid.max(dim=-1).values  # (B, N, H_l, W_l)
            per_level.append(F.interpolate(level_map, size=size, mode="bilinear", align_corners=False))
        return torch.stack(per_level).mean(dim=0)

    def forward(
        self, class_probability: Tensor, cls_levels: list[Tensor], decoded: Tensor, bboxes: Tensor,
        labels: Tensor, anchors: Tensor,
    ) -> Tensor:
        """uint8 (B, N, h, w): row n is the map of detection row n (``bboxes`` (B, N, 5), ``labels`` (B, N))."""
        present = (labels >= 0).to(class_probability.dtype)
        support = self.support(cls_levels, decoded, bboxes[..., :4], anchors) * present[..., None, None]
        height, width = frozen_size(class_probability, 2)
        index = labels.clamp(min=0)[..., None, None].expand(-1, -1, height, width)
        return normalize_map(torch.gather(class_probability, 1, index) * support)
