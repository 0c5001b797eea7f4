"""torchvision classifiers, built by name and cut at their last feature map for Recipro-CAM.

A ``CNNParts`` holds the backbone (image → last spatial feature map) and the rest of the network as a
function of that feature map, both found by tracing the network (``graph_cut``), so the network's own
head is kept exactly: ``neck_head(backbone(x))`` is the torchvision model's own forward. When the neck is
global average pooling the head is also given on the pooled vector (Recipro-CAM's exact fast form).

``with_linear_head`` replaces whatever follows the cut with global average pooling and one linear layer
(the shape of OTX 2.x's ``LinearClsHead``), for any network that has a cut.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor, nn

from otx_xai.errors import UserError
from otx_xai.models.graph_cut import cut_network
from otx_xai.models.weights import load_backbone_weights

log = logging.getLogger(__name__)


@dataclass
class CNNParts:
    """A CNN classifier cut at its last feature map.

    ``neck_head``: feature map (N, C', h, w) → logits; ``head``: pooled vector (N, C') → logits, only
    when the neck is global average pooling (None otherwise); ``channels``: C'.
    """

    backbone: nn.Module
    neck_head: nn.Module
    head: nn.Module | None
    channels: int


class GlobalAveragePool(nn.Module):
    """(N, C, h, w) → (N, C)."""

    def forward(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=(2, 3))


def split_cnn(net: nn.Module) -> CNNParts | None:
    """Cut a torchvision classifier at its last spatial feature map, or None when it has none (or cannot
    be traced)."""
    try:
        cut = cut_network(net)
    except Exception as error:  # any tracing failure means: no known cut
        log.warning("%s cannot be traced (%s: %s)", type(net).__name__, type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "")
        return None
    if cut is None:
        return None
    return CNNParts(cut.backbone, cut.neck_head, cut.pooled_head, cut.channels)


def with_linear_head(parts: CNNParts, num_classes: int) -> CNNParts:
    """``parts`` with its neck and head replaced by global average pooling and one Linear(C', K)."""
    head = nn.Linear(parts.channels, num_classes)
    return CNNParts(parts.backbone, nn.Sequential(GlobalAveragePool(), head), head, parts.channels)


def _replace_last_layer(net: nn.Module, num_classes: int) -> None:
    """Give ``net``'s last Linear (or Conv2d: SqueezeNet) ``num_classes`` outputs, freshly initialized
    (PyTorch's default init: torchvision's own inits are scaled for 1000 outputs), unless it has them."""
    name = [name for name, child in net.named_modules() if isinstance(child, nn.Linear | nn.Conv2d)][-1]
    parent_name, _, child_name = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    child = parent.get_submodule(child_name)
    if isinstance(child, nn.Linear) and child.out_features != num_classes:
        setattr(parent, child_name, nn.Linear(child.in_features, num_classes))
    elif isinstance(child, nn.Conv2d) and child.out_channels != num_classes:
        setattr(parent, child_name, nn.Conv2d(child.in_channels, num_classes, child.kernel_size, child.stride))


def build_torchvision(name: str, num_classes: int, weights: str | None = None) -> nn.Module:
    """A torchvision classification model by name with ``num_classes`` outputs: random weights, or a local
    state-dict file (its classifier kept when its shape matches, re-created at random otherwise)."""
    try:
        net = torchvision.models.get_model(name, weights=None)
    except ValueError:
        names = ", ".join(sorted(torchvision.models.list_models(module=torchvision.models))[:8])
        raise UserError(f"unknown backbone {name!r}: use a torchvision classification model name ({names}, ...)")\
            from None
    _replace_last_layer(net, num_classes)
    if weights:
        load_backbone_weights(net, weights)
    return net


class FeatureTap(nn.Module):
    """Runs a whole network and keeps the last spatial (h, w > 1) feature map one of its top-level
    children produced: the map an Activation Map is drawn from, for networks that cannot be cut."""

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
            raise UserError("the network produces no spatial feature map to explain")
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
