"""torchvision CNN classifiers split into backbone → neck (global average pooling) → head.

The split is what Recipro-CAM needs: the backbone's last feature map (never 1×1: it is taken before
pooling) and a head that can be re-run on pooled vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from otx_xai.models.weights import load_backbone_weights


@dataclass
class CNNParts:
    """A CNN classifier cut at its last feature map."""

    backbone: nn.Module  # image (B, 3, H, W) → feature map (B, C', h, w)
    head: nn.Module  # pooled vector (B, C') → logits (B, K)
    feature_channels: int


def _with_weights(net: nn.Module, weights: str | None) -> nn.Module:
    if weights:
        load_backbone_weights(net, weights)
    return net


def _resnet18(num_classes: int, weights: str | None) -> CNNParts:
    net = _with_weights(torchvision.models.resnet18(weights=None), weights)
    backbone = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                             net.layer4)
    return CNNParts(backbone, nn.Linear(net.fc.in_features, num_classes), net.fc.in_features)


def _mobilenet_v3_small(num_classes: int, weights: str | None) -> CNNParts:
    net = _with_weights(torchvision.models.mobilenet_v3_small(weights=None), weights)
    head = net.classifier
    head[-1] = nn.Linear(head[-1].in_features, num_classes)
    return CNNParts(net.features, head, head[0].in_features)


def _efficientnet_b0(num_classes: int, weights: str | None) -> CNNParts:
    net = _with_weights(torchvision.models.efficientnet_b0(weights=None), weights)
    head = net.classifier
    head[-1] = nn.Linear(head[-1].in_features, num_classes)
    return CNNParts(net.features, head, head[-1].in_features)


CNN_BUILDERS: dict[str, Callable[[int, str | None], CNNParts]] = {
    "resnet18": _resnet18,
    "mobilenet_v3_small": _mobilenet_v3_small,
    "efficientnet_b0": _efficientnet_b0,
}


def build_cnn(name: str, num_classes: int, weights: str | None = None) -> CNNParts:
    """Build a named torchvision CNN, split for explanation; ``weights`` is a local state-dict file."""
    if name not in CNN_BUILDERS:
        raise ValueError(f"unknown backbone {name!r}: choose one of {', '.join(sorted(CNN_BUILDERS))}")
    return CNN_BUILDERS[name](num_classes, weights)
