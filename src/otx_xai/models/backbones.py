"""torchvision CNN classifiers cut at their last feature map, for Recipro-CAM.

A ``CNNParts`` holds the backbone (image → last feature map, never 1×1: it is taken before pooling) and
the rest of the network as a function of that feature map. Three shapes of torchvision classifier are
recognised by their modules:

- ``… avgpool, fc`` (ResNet, ResNeXt, Wide ResNet, RegNet): GAP neck + linear head;
- ``features, avgpool, classifier`` (MobileNet, EfficientNet, ConvNeXt, VGG, DenseNet-like): when the
  pool is global the head also runs on pooled vectors (Recipro-CAM's fast form); VGG's 7×7 pool is not
  global, so Recipro-CAM re-runs pool + classifier on every masked copy;
- ``features, classifier`` with a convolutional classifier (SqueezeNet): the head is a conv head.

Anything else has no known cut (``None``): the classifier then falls back to the Activation Map.

``with_linear_head`` replaces whatever follows the cut with global average pooling and one linear layer
(the shape of OTX 2.x's ``LinearClsHead``), for any network that has a cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor, nn

from otx_xai.models.weights import load_backbone_weights


@dataclass
class CNNParts:
    """A CNN classifier cut at its last feature map.

    ``neck_head``: feature map (N, C', h, w) → logits; ``head``: pooled vector (N, C') → logits, only
    when the neck is global average pooling (None otherwise).
    """

    backbone: nn.Module
    neck_head: nn.Module
    head: nn.Module | None


class GlobalAveragePool(nn.Module):
    """(N, C, h, w) → (N, C)."""

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=(2, 3))


def _is_global_pool(module: nn.Module) -> bool:
    size = getattr(module, "output_size", None)
    return isinstance(module, nn.AdaptiveAvgPool2d) and size in (1, (1, 1))


def _replace_last_linear(module: nn.Module, num_classes: int) -> nn.Module:
    """``module`` with its last Linear (or 1×1 Conv2d) producing ``num_classes`` outputs."""
    if isinstance(module, nn.Linear):
        return nn.Linear(module.in_features, num_classes)
    last = [name for name, child in module.named_modules() if isinstance(child, nn.Linear | nn.Conv2d)][-1]
    parent_name, _, child_name = last.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    child = parent.get_submodule(child_name)
    if isinstance(child, nn.Linear):
        setattr(parent, child_name, nn.Linear(child.in_features, num_classes))
    else:
        setattr(parent, child_name, nn.Conv2d(child.in_channels, num_classes, child.kernel_size, child.stride))
    return module


def _takes_4d(classifier: nn.Module) -> bool:
    first = next(iter(classifier.children()), classifier)
    return isinstance(first, nn.Conv2d) or type(first).__name__ == "LayerNorm2d"


def split_cnn(net: nn.Module, num_classes: int) -> CNNParts | None:
    """Cut a torchvision classifier at its last feature map, or None when its shape is not known."""
    children = dict(net.named_children())
    names = list(children)
    if names[-2:] == ["avgpool", "fc"] or names[-3:] == ["avgpool", "dropout", "fc"]:
        backbone = nn.Sequential(*[children[n] for n in names[: names.index("avgpool")] if children[n] is not None])
        head = _replace_last_linear(children["fc"], num_classes)
        return CNNParts(backbone, nn.Sequential(GlobalAveragePool(), head), head)
    if {"features", "classifier"} <= set(children):
        classifier = _replace_last_linear(children["classifier"], num_classes)
        pool = children.get("avgpool")
        if pool is None:  # a convolutional head on the feature map (SqueezeNet)
            return CNNParts(children["features"], nn.Sequential(classifier, nn.Flatten()), None)
        if _is_global_pool(pool) and not _takes_4d(classifier):
            return CNNParts(children["features"], nn.Sequential(GlobalAveragePool(), classifier), classifier)
        flatten = nn.Identity() if _takes_4d(classifier) else nn.Flatten()
        return CNNParts(children["features"], nn.Sequential(pool, flatten, classifier), None)
    return None


def feature_channels(backbone: nn.Module, input_size: int = 64) -> int:
    """Channels C' of the feature map (N, C', h, w) ``backbone`` produces, from one forward of a zero image."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            return int(backbone(torch.zeros(1, 3, input_size, input_size)).shape[1])
    finally:
        backbone.train(was_training)


def with_linear_head(parts: CNNParts, num_classes: int) -> CNNParts:
    """``parts`` with its neck and head replaced by global average pooling and one Linear(C', K)."""
    head = nn.Linear(feature_channels(parts.backbone), num_classes)
    return CNNParts(parts.backbone, nn.Sequential(GlobalAveragePool(), head), head)


def build_torchvision(name: str, num_classes: int, weights: str | None = None) -> nn.Module:
    """A torchvision classification model by name (random weights, or a local state-dict file)."""
    try:
        net = torchvision.models.get_model(name, weights=None)
    except ValueError:
        names = ", ".join(sorted(torchvision.models.list_models(module=torchvision.models))[:8])
        raise ValueError(f"unknown backbone {name!r}: use a torchvision classification model name ({names}, ...)")\
            from None
    if weights:
        load_backbone_weights(net, weights)
    return net


def build_cnn(name: str, num_classes: int, weights: str | None = None) -> CNNParts:
    """A named torchvision CNN cut for Recipro-CAM; a one-line error when it has no known cut."""
    parts = split_cnn(build_torchvision(name, num_classes, weights), num_classes)
    if parts is None:
        raise ValueError(f"torchvision model {name!r} has no known cut at its last feature map")
    return parts


class FeatureTap(nn.Module):
    """Runs a whole network and keeps the last spatial (h, w > 1) feature map one of its top-level
    children produced: the map an Activation Map is drawn from, for networks with no known cut."""

    def __init__(self, net: nn.Module, input_size: int = 64) -> None:
        super().__init__()
        self.net = net
        self._tap = self._last_spatial_child(input_size)

    def _last_spatial_child(self, input_size: int) -> str:
        shapes: dict[str, tuple[int, ...]] = {}
        hooks = [child.register_forward_hook(lambda _m, _i, out, n=name: shapes.__setitem__(n, tuple(out.shape))
                                             if isinstance(out, Tensor) else None)
                 for name, child in self.net.named_children()]
        was_training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                self.net(torch.zeros(1, 3, input_size, input_size))
        finally:
            self.net.train(was_training)
            for hook in hooks:
                hook.remove()
        spatial = [name for name, shape in shapes.items() if len(shape) == 4 and shape[2] * shape[3] > 1]
        if not spatial:
            raise ValueError("the network produces no spatial feature map to explain")
        return spatial[-1]

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and the tapped feature map of one forward pass."""
        captured: list[Tensor] = []
        handle = self.net.get_submodule(self._tap).register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            logits = self.net(images)
        finally:
            handle.remove()
        return logits, captured[-1]
