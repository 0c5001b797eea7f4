"""torchvision single-stage detectors, opened up: backbone → per-level head outputs → boxes and scores.

torchvision's own ``forward`` resizes and normalizes internally and post-processes per image; our data
module already resizes and normalizes, and the explain forward needs the class logits of every level.
So each family adapter calls the torchvision parts directly (backbone, head sub-layers, anchor
generator, box coder, ``compute_loss``): boxes map 1:1 to input pixels and one pass gives both the
detections and the per-level logits DetClassProbabilityMap reads.

Class channels: RetinaNet / FCOS have K sigmoid classes (channel = label index). SSD has K + 1 softmax
classes with torchvision's background at index 0; the adapter hands the explainer its logits with the
background moved LAST, so channel = label index there too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import boxes as box_ops
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

from otx_xai.boxes import clip_boxes
from otx_xai.errors import UserError
from otx_xai.models.weights import load_backbone_weights
from otx_xai.tracing import constant_size_checks, frozen_size


@dataclass
class HeadResult:
    """One pass of a detector: what both the loss and the detections are computed from."""

    features: list[Tensor]  # pyramid levels, fine to coarse
    cls_levels: list[Tensor]  # per level (B, A·C, H, W), C in label order (background last for SSD)
    outputs: dict[str, Tensor]  # torchvision's flat head outputs (B, H·W·A, ·), its own channel order
    anchors: Tensor  # (H·W·A summed over levels, 4) in input pixels, the same for every image


def flatten_level(level: Tensor, columns: int) -> Tensor:
    """(B, A·C, H, W) → (B, H·W·A, C), torchvision's anchor order."""
    per_anchor = level.unflatten(1, (-1, columns))  # (B, A, C, H, W)
    return per_anchor.permute(0, 3, 4, 1, 2).flatten(1, 3)


class SingleStageNet(nn.Module, ABC):
    """A torchvision single-stage detector split for training, inference and explanation."""

    num_classes: int  # C: class channels per anchor (K, or K + 1 with background)
    has_background = False

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self._anchor_cache: dict[tuple, Tensor] = {}

    @property
    def num_anchors(self) -> list[int]:
        return list(self.net.anchor_generator.num_anchors_per_location())

    def anchors(self, images: Tensor, features: list[Tensor]) -> Tensor:
        """Anchors of one image at this input size; computed once per size (a constant when traced)."""
        size = frozen_size(images, 2)
        key = (size, str(images.device), images.dtype)
        if key not in self._anchor_cache:
            with torch.no_grad():
                image_list = ImageList(images[:1].detach(), [size])
                self._anchor_cache[key] = self.net.anchor_generator(image_list, [f[:1].detach() for f in features])[0]
        return self._anchor_cache[key]

    def forward(self, images: Tensor) -> HeadResult:
        features = list(self.net.backbone(images).values())
        # The heads' GroupNorm checks that a channel holds more than one value (torch.nn.functional
        # reads the input size as a bool): a constant of an IR's fixed input size, no operation traced.
        with constant_size_checks(r"torch\.nn\.functional"):
            cls_levels, outputs = self.head(features)
        return HeadResult(features, cls_levels, outputs, self.anchors(images, features))

    @abstractmethod
    def head(self, features: list[Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Per-level class logits in label order, and torchvision's flat head outputs."""

    @abstractmethod
    def boxes_and_scores(self, result: HeadResult, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Decoded boxes (B, M, 4) clipped to the input, and per-anchor scores (B, M, K) of the K labels."""

    @abstractmethod
    def loss(self, result: HeadResult, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """torchvision's losses; targets hold input-pixel ``boxes`` and 0-based ``labels``."""


class _SigmoidClassHeadNet(SingleStageNet):
    """RetinaNet and FCOS share a classification head: conv tower + ``cls_logits``, sigmoid per class."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__(net)
        self.num_classes = net.head.classification_head.num_classes

    def _class_logits(self, features: list[Tensor]) -> tuple[list[Tensor], Tensor]:
        """Per-level class logits (B, A·K, H, W), and all levels flattened to torchvision's (B, M, K)."""
        cls_head = self.net.head.classification_head
        levels = [cls_head.cls_logits(cls_head.conv(f)) for f in features]
        return levels, torch.cat([flatten_level(x, self.num_classes) for x in levels], dim=1)


class RetinaNetNet(_SigmoidClassHeadNet):
    """RetinaNet: anchor boxes, sigmoid classes, BoxCoder deltas."""

    def head(self, features: list[Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        levels, cls_logits = self._class_logits(features)
        return levels, {"cls_logits": cls_logits, "bbox_regression": self.net.head.regression_head(features)}

    def boxes_and_scores(self, result: HeadResult, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        deltas = result.outputs["bbox_regression"]
        anchors = result.anchors.unsqueeze(0).expand_as(deltas)
        boxes = self.net.box_coder.decode_single(deltas.reshape(-1, 4), anchors.reshape(-1, 4))
        boxes = clip_boxes(boxes.reshape_as(deltas), image_size)
        return boxes, result.outputs["cls_logits"].sigmoid()

    def loss(self, result: HeadResult, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        return self.net.compute_loss(targets, result.outputs, [result.anchors] * len(targets))


class FCOSNet(_SigmoidClassHeadNet):
    """FCOS: anchor points, sigmoid classes with centerness, distances to the box sides."""

    def head(self, features: list[Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        levels, cls_logits = self._class_logits(features)
        regression, centerness = self.net.head.regression_head(features)
        return levels, {"cls_logits": cls_logits, "bbox_regression": regression, "bbox_ctrness": centerness}

    def boxes_and_scores(self, result: HeadResult, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        boxes = self.net.box_coder.decode(result.outputs["bbox_regression"], result.anchors)
        scores = torch.sqrt(result.outputs["cls_logits"].sigmoid() * result.outputs["bbox_ctrness"].sigmoid())
        return clip_boxes(boxes, image_size), scores

    def loss(self, result: HeadResult, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        per_level = [f.shape[-2] * f.shape[-1] for f in result.features]
        return self.net.compute_loss(targets, result.outputs, [result.anchors] * len(targets), per_level)


class SSDNet(SingleStageNet):
    """SSD / SSDlite: default boxes, softmax over K + 1 classes (torchvision's background = index 0)."""

    has_background = True

    def __init__(self, net: nn.Module) -> None:
        super().__init__(net)
        self.num_classes = net.head.classification_head.num_columns

    def head(self, features: list[Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        modules = self.net.head.classification_head.module_list
        raw = [module(f) for module, f in zip(modules, features, strict=True)]
        outputs = {"cls_logits": torch.cat([flatten_level(x, self.num_classes) for x in raw], dim=1),
                   "bbox_regression": self.net.head.regression_head(features)}
        return [self._background_last(x) for x in raw], outputs

    def _background_last(self, level: Tensor) -> Tensor:
        per_anchor = level.unflatten(1, (-1, self.num_classes))  # (B, A, K + 1, H, W)
        return torch.cat([per_anchor[:, :, 1:], per_anchor[:, :, :1]], dim=2).flatten(1, 2)

    def boxes_and_scores(self, result: HeadResult, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        deltas = result.outputs["bbox_regression"]
        anchors = result.anchors.unsqueeze(0).expand_as(deltas)
        boxes = self.net.box_coder.decode_single(deltas.reshape(-1, 4), anchors.reshape(-1, 4))
        boxes = clip_boxes(boxes.reshape_as(deltas), image_size)
        return boxes, result.outputs["cls_logits"].softmax(dim=-1)[..., 1:]

    def loss(self, result: HeadResult, targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        shifted = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]  # background = 0
        matched = []
        for target in shifted:
            if target["boxes"].numel() == 0:
                matched.append(torch.full((result.anchors.shape[0],), -1, dtype=torch.int64,
                                          device=result.anchors.device))
            else:
                matched.append(self.net.proposal_matcher(box_ops.box_iou(target["boxes"], result.anchors)))
        return self.net.compute_loss(shifted, result.outputs, [result.anchors] * len(targets), matched)


class _NoExtraLevel(ExtraFPNBlock):
    """An FPN without extra levels (torchvision adds a max-pooled one when given none)."""

    def forward(self, results: list[Tensor], x: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        return results, names


def _fcos_light(num_classes: int) -> nn.Module:
    """FCOS over ResNet-18 + a 64-channel FPN on strides 8, 16, 32, two-conv heads: trains in seconds on CPU."""
    body = torchvision.models.resnet18(weights=None)
    return_layers = {"layer2": "0", "layer3": "1", "layer4": "2"}
    backbone = BackboneWithFPN(body, return_layers, [128, 256, 512], 64, extra_blocks=_NoExtraLevel())
    anchors = AnchorGenerator(((8,), (16,), (32,)), ((1.0,),) * 3)
    head = torchvision.models.detection.fcos.FCOSHead(64, 1, num_classes, num_convs=2)
    return FCOS(backbone, num_classes, anchor_generator=anchors, head=head)


def _tv(builder: Callable[..., nn.Module], extra: int = 0) -> Callable[[int], nn.Module]:
    return lambda num_classes: builder(weights=None, weights_backbone=None, num_classes=num_classes + extra)


ARCHITECTURES: dict[str, tuple[Callable[[int], nn.Module], type[SingleStageNet]]] = {
    "fcos_light": (_fcos_light, FCOSNet),
    "fcos_resnet50_fpn": (_tv(torchvision.models.detection.fcos_resnet50_fpn), FCOSNet),
    "retinanet_resnet50_fpn": (_tv(torchvision.models.detection.retinanet_resnet50_fpn), RetinaNetNet),
    "ssdlite320_mobilenet_v3_large": (_tv(torchvision.models.detection.ssdlite320_mobilenet_v3_large, 1), SSDNet),
}


def _load_weights(net: nn.Module, weights: str) -> None:
    """A local torchvision detector state dict (class heads skipped), else a backbone-only one."""
    try:
        load_backbone_weights(net, weights)
    except ValueError:
        for name in ("body", "features"):  # FPN backbones keep the CNN in .body, SSDlite in .features
            if hasattr(net.backbone, name):
                load_backbone_weights(getattr(net.backbone, name), weights)
                return
        raise


def build_detector(architecture: str, num_classes: int, weights: str | None = None) -> SingleStageNet:
    """A named detector for ``num_classes`` labels; ``weights`` is a local file (nothing is downloaded)."""
    if architecture not in ARCHITECTURES:
        raise UserError(f"unknown detection architecture {architecture!r}: choose one of "
                         f"{', '.join(sorted(ARCHITECTURES))}")
    builder, adapter = ARCHITECTURES[architecture]
    net = builder(num_classes)
    if weights:
        _load_weights(net, weights)
    return adapter(net)
