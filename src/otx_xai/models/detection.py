"""Single-stage object detection over torchvision detectors, explained by DetClassProbabilityMap.

Outputs (named as in the IR): ``bboxes`` (B, N, 5) float ``x1, y1, x2, y2, score`` in input pixels and
``labels`` (B, N) int64, N = ``detections_per_img`` fixed, best first; rows past the detections are
zeros with label -1. In explain mode also ``feature_vector`` (B, D: each pyramid level global-average
pooled, concatenated), ``saliency_map`` uint8 (B, K, h, w), ``feature_map`` (the middle pyramid level,
whose grid h×w the maps have) and ``box_saliency_map`` uint8 (B, N, h, w), one map per detection row
(DetBoxProbabilityMap). Boxes and maps come from the same forward pass.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from otx_xai.boxes import Detections
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.forward.det_box_map import DetBoxProbabilityMap
from otx_xai.explain.methods.forward.det_class_prob_map import DetClassProbabilityMap
from otx_xai.models.base import batch_images
from otx_xai.models.det_postprocess import detect
from otx_xai.models.detectors import HeadResult, build_detector
from otx_xai.models.object_model import ObjectModel
from otx_xai.tracing import frozen_size


class SingleStageDetector(ObjectModel):
    """SSDlite, RetinaNet or FCOS (torchvision, random or locally loaded weights) with explain outputs.

    Args:
        label_names: class names; label i is class channel i of every output.
        architecture: fcos_light, fcos_resnet50_fpn, retinanet_resnet50_fpn or ssdlite320_mobilenet_v3_large.
        weights: local torchvision state-dict file (a detector's, or its backbone's), or None.
        lr: AdamW learning rate.
        score_thresh: a detection needs a score above this.
        nms_thresh: IoU above which a lower-scored box of the same class is suppressed.
        detections_per_img: N, the fixed number of detection rows per image.
        pre_nms_top_k: candidates (anchor, class pairs) per image that enter NMS.
    """

    task = "detection"
    explain_method = DetClassProbabilityMap.name

    def __init__(
        self,
        label_names: list[str],
        architecture: str = "fcos_light",
        weights: str | None = None,
        lr: float = 1e-3,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        pre_nms_top_k: int = 300,
    ) -> None:
        super().__init__(label_names, lr)
        self.save_hyperparameters()
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.pre_nms_top_k = pre_nms_top_k
        self.detector = build_detector(architecture, len(self.label_names), weights)
        self.explainer = DetClassProbabilityMap(
            num_classes=self.detector.num_classes, num_anchors=self.detector.num_anchors,
            background_last=self.detector.has_background,
        )
        self.box_explainer = DetBoxProbabilityMap(self.detector.num_anchors, iou_thresh=nms_thresh)

    def _detections(self, images: Tensor, result: HeadResult) -> Detections:
        boxes, scores = self.detector.boxes_and_scores(result, frozen_size(images, 2))
        return detect(boxes, scores, self.score_thresh, self.nms_thresh, self.detections_per_img, self.pre_nms_top_k)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        detections = self._detections(images, self.detector(images))
        return {"bboxes": detections.bboxes, "labels": detections.labels}

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        """Detections and, from the same pass, the class maps and one map per detection row
        (``box_saliency_map`` (B, N, h, w), DetBoxProbabilityMap: zeros on padding rows)."""
        result = self.detector(images)
        middle = result.features[len(result.features) // 2]
        detections = self._detections(images, result)
        probability = self.explainer.saliency(*result.cls_levels)
        return {
            "bboxes": detections.bboxes,
            "labels": detections.labels,
            "feature_vector": torch.cat([f.mean(dim=(2, 3)) for f in result.features], dim=1),
            "saliency_map": normalize_map(probability),
            "feature_map": middle,
            "box_saliency_map": self.box_explainer(probability, result.cls_levels, detections),
        }

    def empty_predictions(self, images: Tensor) -> dict[str, Tensor]:
        n = self.detections_per_img
        return {"bboxes": images.new_zeros(0, n, 5), "labels": torch.zeros(0, n, dtype=torch.int64)}

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return self.detector.loss(self.detector(batch_images(batch)), batch["targets"])

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        """Loss, and ``accuracy``: the share of images whose top-scored box has a ground-truth label."""
        if not batch["infos"]:
            return
        images = batch_images(batch)
        result = self.detector(images)
        losses = self.detector.loss(result, batch["targets"])
        top = self._detections(images, result).labels[:, 0].tolist()
        hits = [float(label >= 0 and label in info.gt_labels)
                for label, info in zip(top, batch["infos"], strict=True)]
        size = len(hits)
        self.log(f"{stage}/loss", sum(losses.values()), batch_size=size)
        self.log(f"{stage}/accuracy", sum(hits) / size, prog_bar=True, batch_size=size)
