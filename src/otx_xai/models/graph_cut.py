"""Cutting a torchvision classifier at its last spatial feature map, found by tracing it (torch.fx).

The network is traced in eval mode with torchvision's own feature-extraction tracer (the one behind
``create_feature_extractor``: it handles googlenet/inception's eval branches, densenet's functional
relu + pooling, mnasnet's and shufflenet's ``x.mean([2, 3])``, swin's permute + avgpool, maxvit) and its
shapes are read from one forward of a small zero image. Walking back from the classifier's last
Linear/Conv2d, the cut is the first node that dominates the output (every path from the image to the
logits passes through it) and is either a global average pool (``AdaptiveAvgPool2d(1)``,
``adaptive_avg_pool2d(x, 1)``, ``x.mean([2, 3])``) — the cut is then its input — or a 4-D (B, C, h, w)
map with C > 1 and h·w > 1 (stepping back over a dropout or an adaptive pool, so the map is the
network's own grid). The network is then exactly ``neck_head(backbone(image))``. When the feature map's
only consumer is that global pool, the head is also given as a function of the pooled vector (B, C)
(Recipro-CAM's exact fast form); otherwise (VGG's 7×7 pool, AlexNet, SqueezeNet's convolutional
classifier) only as a function of the feature map. An OpenVINO graph is cut at the same place by
``openvino/recipro_cam_insertion.py`` (the global pooling nearest the logits).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torchvision.models.feature_extraction import NodePathTracer, _set_default_tracer_kwargs

PROBE_SIZES = (128, 224)  # the shapes of one zero image; 224, the native size, when a network refuses 128


@dataclass
class GraphCut:
    """A classifier cut at its last spatial feature map (all three parts share the network's modules).

    ``backbone``: image → feature map (B, C, h, w); ``neck_head``: feature map → logits (the network's
    own pooling and head); ``pooled_head``: pooled vector (B, C) → logits when the pooling is global
    average pooling, else None. ``cut_node``: the traced node name of the feature map.
    """

    backbone: fx.GraphModule
    neck_head: fx.GraphModule
    pooled_head: fx.GraphModule | None
    channels: int
    cut_node: str


def trace(net: nn.Module) -> fx.GraphModule:
    """``net`` traced in eval mode, each node's output shape (from one small probe image) in its meta."""
    was_training = net.training
    net.eval()
    try:
        tracer = NodePathTracer(**_set_default_tracer_kwargs(None))
        graph = tracer.trace(net)
        for node, qualname in tracer.node_to_qualname.items():  # e.g. layer4.1.add: what --explain_layer names
            node.meta["qualname"] = qualname
        module = fx.GraphModule(tracer.root, graph, type(net).__name__)
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints what it raises
            for size in PROBE_SIZES:
                try:
                    ShapeProp(module).propagate(torch.zeros(1, 3, size, size))
                    break
                except (RuntimeError, ValueError, AssertionError):  # too small for it (inception, maxvit)
                    if size == PROBE_SIZES[-1]:
                        raise
    finally:
        net.train(was_training)
    return module.train(was_training)  # a GraphModule copies its root's mode: give it the caller's, not eval


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if hasattr(meta, "shape") else None


def _is_spatial(node: fx.Node) -> bool:
    shape = _shape(node)
    return shape is not None and len(shape) == 4 and shape[1] > 1 and shape[2] * shape[3] > 1


def _reaches_output(graph: fx.Graph, skip: fx.Node) -> bool:
    """Whether the image reaches the output without passing through ``skip``."""
    start = next(node for node in graph.nodes if node.op == "placeholder")
    seen, stack = {start}, [start]
    while stack:
        for user in stack.pop().users:
            if user.op == "output":
                return True
            if user is not skip and user not in seen:
                seen.add(user)
                stack.append(user)
    return False


def _is_dropout(module: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(module.get_submodule(node.target), nn.Dropout | nn.Dropout2d)
    return node.op == "call_function" and node.target in (F.dropout, F.dropout2d, torch.dropout)


def last_layer_node(module: fx.GraphModule) -> fx.Node | None:
    """The classifier's last layer: the last Linear or Conv2d the traced network calls."""
    layers = [node for node in module.graph.nodes if node.op == "call_module"
              and isinstance(module.get_submodule(node.target), nn.Linear | nn.Conv2d)]
    return layers[-1] if layers else None


def _is_adaptive_pool(module: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(module.get_submodule(node.target), nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d)
    return node.op == "call_function" and node.target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d)


def find_cut(module: fx.GraphModule) -> fx.Node | None:
    """The last spatial feature map every path to the logits passes through, before the last layer: the
    input of the last global average pool there is, else the last spatial map (before any dropout or
    adaptive pool, so the map is the network's own grid, never dropped or resampled)."""
    nodes = list(module.graph.nodes)
    last = last_layer_node(module)
    end = nodes.index(last) if last is not None else len(nodes)
    for node in reversed(nodes[:end]):
        pool = is_global_pool(module, node)
        if not (pool or _is_spatial(node)) or _reaches_output(module.graph, node):
            continue
        if pool:
            node = node.args[0]
            if not _is_spatial(node) or _reaches_output(module.graph, node):
                continue
        while _is_dropout(module, node) or _is_adaptive_pool(module, node):
            node = node.args[0]
        return node
    return None


def is_global_pool(module: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node`` is global average pooling of its first argument over (h, w)."""
    if node.op == "call_module":
        sub = module.get_submodule(node.target)
        return isinstance(sub, nn.AdaptiveAvgPool2d) and sub.output_size in (1, (1, 1), [1, 1])
    if node.op == "call_function" and node.target in (F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d):
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return size in (1, (1, 1), [1, 1])
    if (node.op == "call_method" and node.target == "mean") or (node.op == "call_function"
                                                                 and node.target is torch.mean):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        return sorted(d % 4 for d in dims) == [2, 3]
    return False


def _copy_from(module: fx.GraphModule, start: fx.Node, channels: int | None = None) -> fx.GraphModule:
    """The part of the graph after ``start``, as a module whose input replaces ``start``'s output.

    ``channels``: the input is a pooled vector (N, C) standing for ``start``'s (N, C, 1, 1) output.
    """
    graph = fx.Graph()
    value: fx.Node = graph.placeholder("x")
    if channels is not None:
        value = graph.call_method("view", (value, -1, channels, 1, 1))
    env: dict[fx.Node, fx.Node] = {start: value}
    for node in module.graph.nodes:
        if node.op == "output":
            graph.output(fx.map_arg(node.args[0], lambda n: env[n]))
        elif node not in env and node.op != "placeholder" and all(n in env for n in node.all_input_nodes):
            env[node] = graph.node_copy(node, lambda n: env[n])
    return _pruned(fx.GraphModule(module, graph, "Head"))


def _copy_until(module: fx.GraphModule, end: fx.Node) -> fx.GraphModule:
    """The part of the graph up to ``end``, whose output is ``end``'s."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in module.graph.nodes:
        env[node] = graph.node_copy(node, lambda n: env[n])
        if node is end:
            break
    graph.output(env[end])
    return _pruned(fx.GraphModule(module, graph, "Backbone"))


def _pruned(module: fx.GraphModule) -> fx.GraphModule:
    """``module`` without the nodes and submodules its output does not need."""
    module.graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    module.recompile()
    return module


def cut_network(net: nn.Module) -> GraphCut | None:
    """``net`` cut at its last spatial feature map, or None when it has none (see the module docstring)."""
    module = trace(net)
    cut = find_cut(module)
    if cut is None:
        return None
    channels = _shape(cut)[1]
    users = list(cut.users)
    pooled_head = None
    if len(users) == 1 and is_global_pool(module, users[0]):
        pool = users[0]
        pooled_head = _copy_from(module, pool, channels if len(_shape(pool)) == 4 else None)
    return GraphCut(_copy_until(module, cut), _copy_from(module, cut), pooled_head, channels, cut.name)
