"""torchvision Mask R-CNN architectures by name: the standard ResNet-50 FPN and a light ResNet-18 FPN.

Both are built with no download (random initialization, or a local weights file) and for inputs the
data module has already resized and normalized: the built-in ``GeneralizedRCNNTransform`` is never
called (see ``models.instance_segmentation``), so boxes and masks are in input pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torchvision.models.detection import MaskRCNN as TVMaskRCNN
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from otx_xai.errors import UserError
from otx_xai.models.weights import load_backbone_weights


def _resnet50_fpn(num_classes: int, weights: str | None, score_thresh: float, detections: int) -> TVMaskRCNN:
    """torchvision's maskrcnn_resnet50_fpn; ``weights`` a local file (COCO Mask R-CNN or ResNet-50)."""
    net = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1,
                                box_score_thresh=score_thresh, box_detections_per_img=detections)
    if weights:
        try:
            load_backbone_weights(net, weights)
        except ValueError:  # an ImageNet ResNet-50 file: its keys lack the Mask R-CNN prefix
            load_backbone_weights(net.backbone.body, weights)
    return net


def _light(num_classes: int, weights: str | None, score_thresh: float, detections: int) -> TVMaskRCNN:
    """ResNet-18 + a 64-channel FPN, small anchors and heads: trains in seconds on a CPU at ~128 px."""
    body = torchvision.models.resnet18(weights=None)
    if weights:
        load_backbone_weights(body, weights)
    channels = 64
    backbone = BackboneWithFPN(body, {f"layer{i}": str(i - 1) for i in range(1, 5)}, [64, 128, 256, 512],
                               channels, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(((16,), (32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 5)
    return TVMaskRCNN(
        backbone, rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=600, rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_train=300, rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128,
        box_head=TwoMLPHead(channels * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, num_classes + 1),
        box_batch_size_per_image=128, box_score_thresh=score_thresh, box_detections_per_img=detections,
        mask_head=MaskRCNNHeads(channels, [channels, channels], 1),
        mask_predictor=MaskRCNNPredictor(channels, channels, num_classes + 1),
    )


ARCHITECTURES: dict[str, Callable[[int, str | None, float, int], TVMaskRCNN]] = {
    "maskrcnn_resnet50_fpn": _resnet50_fpn,
    "maskrcnn_light": _light,
}


def build_maskrcnn(
    architecture: str, num_classes: int, weights: str | None = None, score_thresh: float = 0.05,
    detections_per_img: int = 100,
) -> TVMaskRCNN:
    """A torchvision MaskRCNN for ``num_classes`` labels (plus torchvision's background class 0)."""
    if architecture not in ARCHITECTURES:
        raise UserError(f"unknown Mask R-CNN architecture {architecture!r}: "
                         f"choose one of {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[architecture](num_classes, weights, score_thresh, detections_per_img)
