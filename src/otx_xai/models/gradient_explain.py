"""Classifier forwards explained by a gradient CAM: at the traced cut, or at a layer picked by name.

``explain_layer`` names a module as torchvision does (``layer3``, ``features.12``, ``layer4.1.conv2``): a
CNN's traced graph keeps each node's qualified name (``graph_cut.trace``), and the layer's output is the
last node inside that module; a copy of the graph passes it through a tap that makes it the leaf the
gradients stop at. A ViT (not traced) is tapped by a forward hook on the module itself.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, fx, nn

from otx_xai.errors import UserError
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.gradient.base import GradientCAM, GridFn, as_grid
from otx_xai.explain.methods.gradient.build import gradient_method
from otx_xai.explain.methods.layer_layout import channels_first, reads_channels_last
from otx_xai.explain.select import GRADIENT

ForwardFn = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]  # images → logits, feature vector, feature map


class _Tap:
    """Turns the tapped value into a leaf that requires grad (only while ``leaves`` is a list)."""

    leaves: list[Tensor] | None = None


def _tap(value: Tensor) -> Tensor:
    if _Tap.leaves is None:
        return value
    leaf = value.detach().clone().requires_grad_(True)
    _Tap.leaves.append(leaf)
    return leaf.clone()  # not the leaf itself: the network may change it in place (x += identity)


torch.fx.wrap("_tap")


def _qualnames(graph: fx.Graph) -> list[str]:
    """Every module path of the traced graph's nodes and their parents (layer4, layer4.1, layer4.1.add)."""
    names: dict[str, None] = {}
    for node in graph.nodes:
        qualname = node.meta.get("qualname")
        parts = qualname.split(".") if qualname else []
        for end in range(1, len(parts) + 1):
            names[".".join(parts[:end])] = None
    return list(names)


def _layer_nodes(module: fx.GraphModule, name: str) -> list[fx.Node]:
    """The traced nodes inside the module called ``name``, in graph order (its output is the last)."""
    return [node for node in module.graph.nodes if (node.meta.get("qualname") or "") == name
            or (node.meta.get("qualname") or "").startswith(name + ".")]


def _tapped_copy(module: fx.GraphModule, name: str) -> fx.GraphModule | None:
    """A copy of ``module`` whose node output of the module called ``name`` goes through ``_tap``, or None."""
    nodes = _layer_nodes(module, name)
    if not nodes:
        return None
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in module.graph.nodes:
        env[node] = graph.node_copy(node, lambda n: env[n])
        if node is nodes[-1]:
            env[node] = graph.call_function(_tap, (env[node],))
    return fx.GraphModule(module, graph, type(module).__name__)  # shares the modules, not the graph


@dataclass
class ExplainLayer:
    """A layer picked by name: ``run(images)`` gives the forward's outputs and the layer's leaf activation."""

    name: str
    forward: Callable[[Tensor], Any] = field(repr=False)
    hook_module: nn.Module | None = field(default=None, repr=False)

    def run(self, images: Tensor) -> tuple[Any, Tensor]:
        from otx_xai.explain.methods.gradient.layer_tap import tapped

        with torch.inference_mode(False), torch.enable_grad():
            images = images.clone()
            if self.hook_module is not None:
                with tapped(self.hook_module) as captured:
                    outputs = self.forward(images)
            else:
                _Tap.leaves = captured = []
                try:
                    outputs = self.forward(images)
                finally:
                    _Tap.leaves = None
        if not captured:
            raise UserError(f"explain_layer {self.name!r} is not run by this model's forward: pick a module it calls")
        return outputs, captured[-1]


def _unknown(name: str, names: list[str]) -> UserError:
    nearest = difflib.get_close_matches(name, names, n=5, cutoff=0.3) or names[-5:]
    return UserError(f"explain_layer {name!r} is not a module of this model: use one of its module names, e.g. "
                     f"{', '.join(nearest)}")


def check_explain_layer(name: str | None, method: str) -> bool:
    """Whether a layer was named; a one-line UserError when ``method`` cannot use one."""
    if not name:
        return False
    if method not in GRADIENT:
        raise UserError(f"explain_layer applies to the gradient methods ({', '.join(GRADIENT)}), not {method}: "
                        "drop --explain_layer or pick one of them")
    return True


def cnn_explain_layer(backbone: fx.GraphModule, neck_head: nn.Module, name: str | None, method: str
                      ) -> tuple[fx.GraphModule, nn.Module] | None:
    """The (backbone, neck_head) pair with the layer called ``name`` tapped, or None when no layer is named."""
    if not check_explain_layer(name, method):
        return None
    tapped = _tapped_copy(backbone, name)
    if tapped is not None:
        return tapped, neck_head
    if isinstance(neck_head, fx.GraphModule) and (tapped := _tapped_copy(neck_head, name)) is not None:
        return backbone, tapped
    graphs = [backbone.graph] + ([neck_head.graph] if isinstance(neck_head, fx.GraphModule) else [])
    raise _unknown(name, [n for graph in graphs for n in _qualnames(graph)])


def cnn_layer_grid(backbone: fx.GraphModule, neck_head: nn.Module, name: str | None) -> GridFn:
    """How the gradient CAMs read the layer called ``name`` as a (B, C, h, w) grid: as it is, or moved to
    channels-first when the network reads it channels-last (Swin's stages, ``layer_layout``)."""
    for module in (backbone, neck_head):
        nodes = _layer_nodes(module, name) if name and isinstance(module, fx.GraphModule) else []
        if nodes:
            return channels_first if reads_channels_last(nodes[-1]) else as_grid
    return as_grid


def vit_explain_layer(vit: nn.Module, name: str | None, method: str) -> nn.Module | None:
    """The ViT module called ``name`` (hooked), or None when no layer is named."""
    if not check_explain_layer(name, method):
        return None
    modules = dict(vit.named_modules())
    if name not in modules or not name:
        raise _unknown(name, [n for n in modules if n])
    return modules[name]


def gradient_explainer(method: str, head: Callable[[Tensor], Tensor], multilabel: bool,
                       to_grid: Callable[[Tensor], Tensor] = as_grid) -> GradientCAM:
    """The gradient CAM ``method`` over the network after the activation (``head``)."""
    return gradient_method(method)(head, multilabel=multilabel, to_grid=to_grid)


def _check_grid(explainer: GradientCAM, activation: Tensor, name: str) -> None:
    try:
        grid = explainer._to_grid(activation.detach())
    except (RuntimeError, ValueError):
        grid = None
    if grid is None or grid.dim() != 4 or activation.dim() not in (3, 4):
        raise UserError(f"explain_layer {name!r} outputs shape {tuple(activation.shape)}, not a feature map "
                        "(B, C, h, w): pick a convolutional stage (a ViT: a block's token output)")


def layer_saliency(explainer: GradientCAM, layer: ExplainLayer, images: Tensor, logits_of: Callable[[Any], Tensor]
                   ) -> tuple[Any, Tensor]:
    """The forward's outputs and the uint8 maps at ``layer``."""
    outputs, activation = layer.run(images)
    _check_grid(explainer, activation, layer.name)
    saliency = normalize_map(explainer.saliency_from_graph(activation, logits_of(outputs)))
    return outputs, saliency


def cnn_gradient_explain(forward: ForwardFn, explainer: GradientCAM, layer: ExplainLayer | None, images: Tensor
                         ) -> dict[str, Tensor]:
    """A CNN's four explain outputs, the maps from ``explainer`` at the cut (or at ``layer``)."""
    if layer is None:
        logits, feature_vector, feature_map = forward(images)
        saliency = explainer(feature_map, logits)
    else:
        outputs, saliency = layer_saliency(explainer, layer, images, lambda out: out[0])
        logits, feature_vector, feature_map = (value.detach() for value in outputs)
    return {"logits": logits, "feature_vector": feature_vector, "saliency_map": saliency, "feature_map": feature_map}
