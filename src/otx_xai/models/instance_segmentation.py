"""Instance segmentation: torchvision Mask R-CNN, explained by aggregating its own predicted masks.

Inputs come resized and normalized by the data module: torchvision's ``GeneralizedRCNNTransform``
(resize + normalization) is bypassed, so boxes and masks are in model-input pixels. Training runs
torchvision's RPN and RoI heads in training mode (their losses); prediction runs the batched,
fixed-shape inference of ``models.maskrcnn_inference``, which is also what the IR is traced from.

Outputs (IR names): ``bboxes`` float (B, N, 5: x1, y1, x2, y2, score), ``labels`` int64 (B, N),
``masks`` float (B, N, H, W) mask probabilities 0..1 in input pixels, N = ``detections_per_img``,
padding rows with score 0 and label -1; with explain also ``feature_vector`` (B, 5·C: every pyramid
level average-pooled, concatenated), ``saliency_map`` uint8 (B, K, h, w) and ``feature_map``
(B, C, h, w), the middle pyramid level whose grid h×w the saliency map has.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from otx_xai.errors import UserError
from otx_xai.explain.methods.forward.instance_seg_map import InstSegMaskMap
from otx_xai.models.base import batch_images
from otx_xai.models.maskrcnn_builders import build_maskrcnn
from otx_xai.models.maskrcnn_inference import InstancePredictions, predict_instances
from otx_xai.models.object_model import ObjectModel
from otx_xai.tracing import static_int

PREDICTION_OUTPUTS = ("bboxes", "labels", "masks")
MATCH_IOU = 0.5  # validation proxy: a detection matches an object of its label at this box IoU
MATCH_SCORE = 0.5  # and counts as a prediction from this score


def instance_targets(batch: dict[str, Any]) -> list[dict[str, Tensor]]:
    """torchvision training targets (label 0 is its background) from a batch of the COCO data module."""
    targets = []
    for target in batch["targets"]:
        if "masks" not in target:
            raise UserError("instance segmentation batches need target masks: read the data with "
                             "otx_xai.data.instance_seg_data.InstanceSegDataModule (COCO with polygons)")
        targets.append({"boxes": target["boxes"].float(), "labels": target["labels"].long() + 1,
                        "masks": target["masks"].to(torch.uint8)})
    return targets


def matched_objects(boxes: Tensor, scores: Tensor, labels: Tensor, target: dict[str, Tensor]) -> int:
    """How many ground-truth objects a detection of the same label overlaps (greedy, best score first)."""
    keep = scores >= MATCH_SCORE
    boxes, labels = boxes[keep], labels[keep]
    if len(boxes) == 0 or len(target["boxes"]) == 0:
        return 0
    overlap = box_iou(boxes, target["boxes"].to(boxes)) * (labels[:, None] == target["labels"][None])
    free = torch.ones(overlap.shape[1], dtype=torch.bool, device=overlap.device)
    matched = 0
    for row in overlap:  # detections are sorted by score
        best = torch.where(free, row, torch.zeros_like(row)).max(dim=0)
        if best.values >= MATCH_IOU:
            free[best.indices] = False
            matched += 1
    return matched


class MaskRCNN(ObjectModel):
    """Mask R-CNN (torchvision) with instance-seg mask aggregation in its explain forward.

    Args:
        label_names: class names; their order is the label index and the saliency channel order.
        architecture: ``maskrcnn_light`` (ResNet-18 FPN, for small inputs and CPUs) or
            ``maskrcnn_resnet50_fpn`` (torchvision's).
        weights: local file with pretrained torchvision weights (a COCO Mask R-CNN state dict, or an
            ImageNet ResNet for the backbone), or None for random initialization.
        lr: AdamW learning rate.
        score_thresh: detections scoring at most this are dropped.
        detections_per_img: N, the fixed number of (padded) detections per image.
    """

    task = "instance_segmentation"
    explain_method = InstSegMaskMap.name

    def __init__(
        self,
        label_names: list[str],
        architecture: str = "maskrcnn_light",
        weights: str | None = None,
        lr: float = 1e-3,
        score_thresh: float = 0.05,
        detections_per_img: int = 20,
    ) -> None:
        super().__init__(label_names, lr)
        self.save_hyperparameters()
        self.net = build_maskrcnn(architecture, len(self.label_names), weights, score_thresh, detections_per_img)
        self.explainer = InstSegMaskMap(len(self.label_names))

    @staticmethod
    def _predictions(predicted: InstancePredictions) -> dict[str, Tensor]:
        bboxes = torch.cat([predicted.boxes, predicted.scores.unsqueeze(-1)], dim=-1)
        return {"bboxes": bboxes, "labels": predicted.labels, "masks": predicted.masks}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """bboxes, labels and masks of a normalized (B, 3, H, W) batch."""
        return self._predictions(predict_instances(self.net, images))

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        """The predictions plus feature_vector, saliency_map and feature_map, in one pass."""
        predicted = predict_instances(self.net, images)
        feature_map = predicted.features[len(predicted.features) // 2]
        saliency = self.explainer(predicted.masks, predicted.scores, predicted.labels,
                                  (static_int(feature_map.shape[-2]), static_int(feature_map.shape[-1])))
        return {
            **self._predictions(predicted),
            "feature_vector": torch.cat([level.mean(dim=(2, 3)) for level in predicted.features], dim=1),
            "saliency_map": saliency,
            "feature_map": feature_map,
        }

    def empty_predictions(self, images: Tensor) -> dict[str, Tensor]:
        return {"bboxes": images.new_zeros(0, 0, 5), "labels": images.new_zeros(0, 0, dtype=torch.int64),
                "masks": images.new_zeros(0, 0, 0, 0)}

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """torchvision's RPN and RoI-head losses, the image list taken as is (no resize)."""
        images, targets = batch_images(batch), instance_targets(batch)
        size = (int(images.shape[-2]), int(images.shape[-1]))
        image_list = ImageList(images, [size] * len(images))
        features = self.net.backbone(images)
        proposals, rpn_losses = self.net.rpn(image_list, features, targets)
        _, head_losses = self.net.roi_heads(features, proposals, image_list.image_sizes, targets)
        return {**rpn_losses, **head_losses}

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        """Log ``<stage>/accuracy``: F1 of detections (score ≥ 0.5) matching objects at box IoU 0.5."""
        if not batch["infos"]:
            return
        outputs = self(batch_images(batch))
        matched = predicted = objects = 0
        for bboxes, labels, target in zip(outputs["bboxes"], outputs["labels"], batch["targets"], strict=True):
            matched += matched_objects(bboxes[:, :4], bboxes[:, 4], labels, target)
            predicted += int((bboxes[:, 4] >= MATCH_SCORE).sum())
            objects += len(target["boxes"])
        accuracy = 2.0 * matched / max(1, predicted + objects)
        self.log(f"{stage}/accuracy", accuracy, prog_bar=True, batch_size=len(batch["infos"]))
