"""Score-CAM at a layer picked by name (``--explain_layer``) instead of the traced cut.

A CNN (and Swin): the module is found by the qualified names its traced graph keeps (``layer3``,
``features.12``, as ``--explain_layer`` names them for the gradient CAMs); a copy of the backbone's graph
also outputs the last node inside that module. A torchvision ViT (not traced): a forward hook on the named
module. The layer's output must be a spatial map (B, C, h, w), or a ViT's tokens (B, 1+N, D), taken as
the patch grid with the CLS token left out.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, fx

from otx_xai.errors import UserError
from otx_xai.explain.methods.forward.vit_recipro_cam import patch_grid
from otx_xai.explain.methods.layer_layout import channels_first, reads_channels_last

LayerForward = Callable[[Tensor], tuple[Tensor, Tensor]]  # images → logits, the layer's feature map


def _qualnames(graph: fx.Graph) -> list[str]:
    names: dict[str, None] = {}
    for node in graph.nodes:
        parts = (node.meta.get("qualname") or "").split(".")
        for end in range(1, len(parts) + 1):
            if parts[0]:
                names[".".join(parts[:end])] = None
    return list(names)


def _unknown(name: str, names: list[str]) -> UserError:
    nearest = difflib.get_close_matches(name, names, n=5, cutoff=0.3) or names[-5:]
    return UserError(f"explain_layer {name!r} is not a layer before the feature map Score-CAM can mask with: "
                     f"use one of the model's module names, e.g. {', '.join(nearest)}")


def _with_layer_output(module: fx.GraphModule, name: str) -> tuple[fx.GraphModule, bool]:
    """A copy of ``module`` returning (its output, the output of the last node inside the module ``name``),
    and whether the network reads that output channels-last (Swin's stages: ``layer_layout``)."""
    nodes = [node for node in module.graph.nodes if node.op != "output" and (
        (node.meta.get("qualname") or "") == name or (node.meta.get("qualname") or "").startswith(name + "."))]
    if not nodes:
        raise _unknown(name, _qualnames(module.graph))
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in module.graph.nodes:
        if node.op == "output":
            graph.output((fx.map_arg(node.args[0], lambda n: env[n]), env[nodes[-1]]))
        else:
            env[node] = graph.node_copy(node, lambda n: env[n])
    return fx.GraphModule(module, graph, type(module).__name__), reads_channels_last(nodes[-1])


def _as_map(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor) and value.ndim == 4:
        return value
    if isinstance(value, Tensor) and value.ndim == 3:  # ViT tokens (B, 1+N, D): the patch grid
        return patch_grid(value)
    shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
    raise UserError(f"explain_layer {name!r} gives {shape}, not a feature map (B, C, h, w): pick a "
                    "convolutional stage (e.g. layer3) or a transformer block")


def layer_forward(model: Any, name: str) -> LayerForward:
    """``images → (logits, feature map of layer name)`` for an ImageClassifier (CNN, Swin or ViT)."""
    if hasattr(model, "vit"):
        modules = dict(model.vit.named_modules())
        if not name or name not in modules:
            raise _unknown(name, [n for n in modules if n])
        module = modules[name]

        def vit_forward(images: Tensor) -> tuple[Tensor, Tensor]:
            captured: list[Any] = []
            handle = module.register_forward_hook(lambda _m, _i, output: captured.append(output))
            try:
                logits = model(images)
            finally:
                handle.remove()
            if not captured:
                raise UserError(f"explain_layer {name!r} is not run by this model's forward: pick a module it calls")
            return logits, _as_map(captured[-1], name)

        return vit_forward
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, fx.GraphModule):
        raise UserError(f"{type(model).__name__} has no traced backbone: Score-CAM explains it only at its "
                        "feature map (drop --explain_layer)")
    tapped, channels_last = _with_layer_output(backbone, name)

    def cnn_forward(images: Tensor) -> tuple[Tensor, Tensor]:
        feature_map, layer = tapped(images)
        if channels_last and isinstance(layer, Tensor) and layer.ndim == 4:
            layer = channels_first(layer)
        pooled_head = getattr(model, "_pooled_head", None)
        logits = pooled_head(feature_map.mean(dim=(2, 3))) if pooled_head is not None else model.neck_head(feature_map)
        return logits, _as_map(layer, name)

    return cnn_forward


def check_layer(model: Any, name: str) -> None:
    """A one-line UserError now (before any run starts) when ``name`` is not a usable layer of ``model``."""
    forward = layer_forward(model, name)
    size = getattr(model, "vit", None)
    side = size.image_size if size is not None else 224
    with torch.inference_mode():
        forward(torch.zeros(1, 3, side, side))
