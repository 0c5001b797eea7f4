"""Batched, fixed-shape Mask R-CNN inference over the modules of a torchvision ``MaskRCNN``.

torchvision's own eval path loops over images in Python and returns a variable number of detections,
so a trace of it is tied to one batch size. This module runs the same modules (backbone + FPN, RPN head
and anchors, box and mask heads, box coders) with the same post-processing rules (per-level top-k,
NMS per level / per class, score threshold, detections per image), written over the whole batch:
data-dependent selections only ever become masks over fixed-size tensors and ``topk`` with a constant
k, so every output has a fixed shape (B, N, ...) and the trace keeps a dynamic batch dimension.
Padded detections have score 0, label -1, an all-zero box and an all-zero mask.

Masks are pasted into input pixels with a separable bilinear resampling (two small matrix products per
instance), equivalent to ``grid_sample`` with zero padding and ``align_corners=False``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection import MaskRCNN as TVMaskRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import MultiScaleRoIAlign, nms, roi_align
from torchvision.ops.poolers import _setup_scales

from otx_xai.tracing import static_int


@dataclass
class InstancePredictions:
    """Fixed-size predictions of a batch; padding has score 0 and label -1."""

    boxes: Tensor  # (B, N, 4) x1, y1, x2, y2 in input pixels
    scores: Tensor  # (B, N)
    labels: Tensor  # (B, N) int64 label index (background excluded)
    masks: Tensor  # (B, N, H, W) float probabilities 0..1 in input pixels
    features: list[Tensor]  # pyramid levels, finest first


def _gather(values: Tensor, index: Tensor) -> Tensor:
    """values (B, M, ...) picked along dim 1 by index (B, k)."""
    shape = index.shape + values.shape[2:]
    expanded = index.reshape(index.shape + (1,) * (values.dim() - 2)).expand(shape)
    return values.gather(1, expanded)


def _clip(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    height, width = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([x1.clamp(0, width), y1.clamp(0, height), x2.clamp(0, width), y2.clamp(0, height)], -1)


def _large_enough(boxes: Tensor, min_size: float) -> Tensor:
    return ((boxes[..., 2] - boxes[..., 0]) >= min_size) & ((boxes[..., 3] - boxes[..., 1]) >= min_size)


def _nms_keep(boxes: Tensor, scores: Tensor, groups: Tensor, valid: Tensor, threshold: float,
              size: tuple[int, int]) -> Tensor:
    """A (M,) mask of the boxes (M, 4) that survive NMS within their group, among the valid ones.

    Groups are separated by a constant coordinate offset (boxes are clipped to the image), so one
    ``nms`` call serves every image and class.
    """
    candidates = torch.nonzero(valid).flatten()
    offsets = groups[candidates].to(boxes.dtype) * float(max(size) + 1)
    kept = nms(boxes[candidates] + offsets[:, None], scores[candidates], threshold)
    return torch.zeros_like(scores).scatter(0, candidates[kept], 1.0) > 0


def _image_rois(boxes: Tensor) -> Tensor:
    """(B·N, 5) RoIs (image index, x1, y1, x2, y2) from boxes (B, N, 4)."""
    index = torch.arange(boxes.shape[0], device=boxes.device, dtype=boxes.dtype)
    index = index.view(-1, 1, 1).expand(-1, boxes.shape[1], 1)
    return torch.cat([index, boxes], dim=-1).reshape(-1, 5)


def pool_rois(pooler: MultiScaleRoIAlign, features: dict[str, Tensor], rois: Tensor,
              size: tuple[int, int]) -> Tensor:
    """Multi-scale RoIAlign of (M, 5) RoIs over batched features: each RoI from its FPN level."""
    levels_in = [features[name] for name in pooler.featmap_names]
    scales, mapper = _setup_scales(levels_in, [size], pooler.canonical_scale, pooler.canonical_level)
    pooled_size, ratio = pooler.output_size, pooler.sampling_ratio
    if len(levels_in) == 1:
        return roi_align(levels_in[0], rois, pooled_size, scales[0], ratio)
    levels = mapper([rois[:, 1:]])
    result = rois.new_zeros((rois.shape[0], levels_in[0].shape[1], *pooled_size))
    for level, (feature, scale) in enumerate(zip(levels_in, scales, strict=True)):
        index = torch.nonzero(levels == level).flatten()
        pooled = roi_align(feature, rois[index], pooled_size, scale, ratio)
        result = result.index_copy(0, index, pooled)
    return result


def propose(net: TVMaskRCNN, features: dict[str, Tensor], size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """RPN proposals (B, P, 4) and their validity (B, P), as torchvision's RPN in eval mode."""
    rpn = net.rpn
    maps = list(features.values())
    objectness, deltas = rpn.head(maps)
    anchors = rpn.anchor_generator(ImageList(maps[0].new_zeros(1, 3, *size), [size]), maps)[0]
    batch = maps[0].shape[0]
    scores, boxes, levels, start = [], [], [], 0
    for level, (logits, regression) in enumerate(zip(objectness, deltas, strict=True)):
        count = static_int(logits.shape[1] * logits.shape[2] * logits.shape[3])
        logits = logits.permute(0, 2, 3, 1).reshape(batch, -1)
        regression = regression.view(batch, -1, 4, *regression.shape[-2:]).permute(0, 3, 4, 1, 2)
        level_anchors = anchors[start : start + count].unsqueeze(0).expand(batch, -1, -1)
        start += count
        top, index = logits.topk(min(rpn._pre_nms_top_n["testing"], count), dim=1)
        decoded = rpn.box_coder.decode_single(_gather(regression.reshape(batch, -1, 4), index).reshape(-1, 4),
                                              _gather(level_anchors, index).reshape(-1, 4))
        scores.append(top)
        boxes.append(decoded.reshape(batch, -1, 4))
        levels.append(torch.full_like(index, level))
    scores, levels = torch.sigmoid(torch.cat(scores, 1)), torch.cat(levels, 1)
    boxes = _clip(torch.cat(boxes, 1), size)
    valid = _large_enough(boxes, rpn.min_size) & (scores >= rpn.score_thresh)
    groups = torch.arange(batch, device=levels.device).view(-1, 1) * len(maps) + levels
    keep = _nms_keep(boxes.reshape(-1, 4), scores.flatten(), groups.flatten(), valid.flatten(),
                     rpn.nms_thresh, size).view_as(scores)
    top_n = min(rpn._post_nms_top_n["testing"], static_int(scores.shape[1]))
    ranked, index = torch.where(keep, scores, -1.0).topk(top_n, dim=1)
    return _gather(boxes, index), ranked >= 0


def paste_masks(masks: Tensor, boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, N, S, S) box-relative masks → (B, N, H, W) in input pixels, bilinear with zero padding."""
    cells = torch.arange(masks.shape[-1], device=masks.device, dtype=masks.dtype)

    def weights(low: Tensor, high: Tensor, length: int) -> Tensor:  # (B, N, length, S)
        centres = torch.arange(length, device=masks.device, dtype=masks.dtype) + 0.5
        extent = (high - low).clamp_min(1e-6).unsqueeze(-1)
        position = (centres - low.unsqueeze(-1)) / extent * masks.shape[-1] - 0.5
        return (1.0 - (position.unsqueeze(-1) - cells).abs()).clamp_min(0.0)

    rows = weights(boxes[..., 1], boxes[..., 3], size[0])
    columns = weights(boxes[..., 0], boxes[..., 2], size[1])
    return torch.matmul(torch.matmul(rows, masks), columns.transpose(-1, -2)).clamp(0.0, 1.0)


def detect(net: TVMaskRCNN, features: dict[str, Tensor], proposals: Tensor, proposal_valid: Tensor,
           size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """Boxes (B, N, 4), scores (B, N) and labels (B, N) from proposals, as torchvision's box head."""
    heads = net.roi_heads
    batch, count = proposals.shape[:2]
    rois = _image_rois(proposals)
    logits, regression = heads.box_predictor(heads.box_head(pool_rois(heads.box_roi_pool, features, rois, size)))
    classes = static_int(logits.shape[1]) - 1
    boxes = heads.box_coder.decode_single(regression, rois[:, 1:]).reshape(batch, count, classes + 1, 4)
    boxes = _clip(boxes[:, :, 1:], size).reshape(batch, -1, 4)
    scores = F.softmax(logits, -1).reshape(batch, count, classes + 1)[:, :, 1:].reshape(batch, -1)
    labels = torch.arange(classes, device=scores.device).view(1, 1, -1).expand(batch, count, -1)
    labels = labels.reshape(batch, -1)
    per_class = proposal_valid.unsqueeze(-1).expand(-1, -1, classes).reshape(batch, -1)
    valid = per_class & (scores > heads.score_thresh) & _large_enough(boxes, 1e-2)
    groups = torch.arange(batch, device=labels.device).view(-1, 1) * classes + labels
    keep = _nms_keep(boxes.reshape(-1, 4), scores.flatten(), groups.flatten(), valid.flatten(),
                     heads.nms_thresh, size).view_as(scores)
    top_n = min(heads.detections_per_img, static_int(scores.shape[1]))
    top, index = torch.where(keep, scores, 0.0).topk(top_n, dim=1)
    found = top > 0
    det_boxes = _gather(boxes, index) * found.unsqueeze(-1).to(boxes.dtype)
    det_labels = torch.where(found, _gather(labels, index), -1)
    missing = heads.detections_per_img - top_n  # fewer candidates than detections: pad
    if missing > 0:
        det_boxes, top = F.pad(det_boxes, (0, 0, 0, missing)), F.pad(top, (0, missing))
        det_labels = F.pad(det_labels, (0, missing), value=-1)
    return det_boxes, top, det_labels


def segment(net: TVMaskRCNN, features: dict[str, Tensor], boxes: Tensor, labels: Tensor,
            size: tuple[int, int]) -> Tensor:
    """Mask probabilities (B, N, H, W) of detections, pasted into input pixels; padding → zeros."""
    heads = net.roi_heads
    pooled = pool_rois(heads.mask_roi_pool, features, _image_rois(boxes), size)
    logits = heads.mask_predictor(heads.mask_head(pooled))  # (B·N, K+1, S, S)
    channel = (labels.clamp_min(0) + 1).reshape(-1, 1, 1, 1).expand(-1, 1, *logits.shape[-2:])
    probabilities = torch.sigmoid(logits.gather(1, channel)).reshape(*labels.shape, *logits.shape[-2:])
    probabilities = probabilities * (labels >= 0).to(probabilities.dtype)[..., None, None]
    return paste_masks(probabilities, boxes, size)


def predict_instances(net: TVMaskRCNN, images: Tensor) -> InstancePredictions:
    """Fixed-size instance predictions of a normalized (B, 3, H, W) batch, in input pixels.

    While tracing, torchvision's own shape checks (e.g. in ``roi_align``) warn about Python booleans:
    those are static for a given input size, so the warnings are silenced here.
    """
    size = (static_int(images.shape[-2]), static_int(images.shape[-1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        features = net.backbone(images)
        proposals, proposal_valid = propose(net, features, size)
        boxes, scores, labels = detect(net, features, proposals, proposal_valid, size)
        masks = segment(net, features, boxes, labels, size)
    return InstancePredictions(boxes, scores, labels, masks, list(features.values()))
