"""Per-box DetClassProbabilityMap: for each detected box, the class probability of its label over the
anchor positions that produced it.

A box's support is the set of NMS candidates (the ``pre_nms_top_k`` best anchor-class pairs that scored
above the threshold) of the box's own label whose box overlaps the detected one with IoU ≥ ``iou_thresh``
— with the detector's NMS threshold, exactly the candidates NMS could merge into it — each weighted by
that IoU, plus the candidate NMS kept (weight 1). Each candidate's weight goes to its anchor's location
(the maximum over the anchors of a location), per pyramid level; the per-level grids are bilinearly
resized to the middle level's grid and averaged over levels (as DetClassProbabilityMap treats the logits).
The box's map is DetClassProbabilityMap's float probability of the box's label times that support,
min-max normalized to uint8 per box. Padding rows (label −1) get all-zero maps. Fixed shapes throughout:
it traces into the IR.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from otx_xai.boxes import Detections, box_iou
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.forward.det_class_prob_map import mean_of_levels
from otx_xai.tracing import frozen_size


class DetBoxProbabilityMap(nn.Module):
    """Per-box saliency (B, N, h, w) uint8 from DetClassProbabilityMap's float maps and the detections.

    Args:
        num_anchors: A per level (one int for every level, or one per level), as DetClassProbabilityMap.
        iou_thresh: the IoU with the detected box a candidate's box needs to count.
    """

    name = "DetBoxProbabilityMap"

    def __init__(self, num_anchors: int | list[int], iou_thresh: float) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.iou_thresh = iou_thresh

    def _anchors(self, level: int) -> int:
        return self.num_anchors if isinstance(self.num_anchors, int) else self.num_anchors[level]

    def _locations(self, grids: list[tuple[int, int]], device: torch.device) -> Tensor:
        """(M,) the location (over every level's H·W cells, fine to coarse) of each anchor, torchvision order."""
        parts, offset = [], 0
        for index, (height, width) in enumerate(grids):
            cells = torch.arange(height * width, device=device) + offset
            parts.append(cells.repeat_interleave(self._anchors(index)))
            offset += height * width
        return torch.cat(parts)

    def support(self, cls_levels: list[Tensor], detections: Detections) -> Tensor:
        """Float support (B, N, h, w) on the middle level's grid (``cls_levels``: only their grids are read)."""
        boxes, labels = detections.bboxes[..., :4], detections.labels
        iou = box_iou(boxes, detections.candidate_boxes)  # (B, N, k)
        counts = (labels.unsqueeze(-1) == detections.candidate_labels.unsqueeze(1)) & (iou >= self.iou_thresh)
        weight = iou * (counts & detections.candidate_valid.unsqueeze(1)).to(iou.dtype)
        top_k = frozen_size(detections.candidate_labels, 1)[0]
        own = torch.arange(top_k, device=iou.device) == detections.kept.unsqueeze(-1)
        weight = torch.maximum(weight, own.to(iou.dtype)) * (labels >= 0).unsqueeze(-1).to(iou.dtype)
        grids = [frozen_size(level, 2) for level in cls_levels]
        location = self._locations(grids, iou.device)[detections.candidate_anchors]  # (B, k)
        cells = sum(height * width for height, width in grids)
        grid = weight.new_zeros(*weight.shape[:2], cells).scatter_reduce(
            2, location.unsqueeze(1).expand_as(weight), weight, reduce="amax")
        size = grids[len(grids) // 2]
        per_level, start = [], 0
        for height, width in grids:
            level_map = grid[:, :, start:start + height * width].unflatten(2, (height, width))
            start += height * width
            per_level.append(F.interpolate(level_map, size=size, mode="bilinear", align_corners=False))
        return mean_of_levels(per_level)

    def forward(self, class_probability: Tensor, cls_levels: list[Tensor], detections: Detections) -> Tensor:
        """uint8 (B, N, h, w): row n is the map of detection row n."""
        support = self.support(cls_levels, detections)
        height, width = frozen_size(class_probability, 2)
        index = detections.labels.clamp(min=0)[..., None, None].expand(-1, -1, height, width)
        return normalize_map(torch.gather(class_probability, 1, index) * support)
