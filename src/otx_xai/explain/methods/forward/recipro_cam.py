"""Recipro-CAM (Byun & Lee, 2022): gradient-free class activation maps for CNN classifiers.

For a feature map f (C', h, w) build h·w copies, copy k keeping only spatial position k; the score of
class c on copy k, after the model's own neck and head, is the saliency of position k for class c.
When the neck is global average pooling, copy k pools to f[:, k] / (h·w), so the copies never need
to be materialized: the head runs on h·w vectors per image instead. When that head is made of linear
layers and element-wise activations (a linear head, or an MLP like mobilenet_v3's), it runs on every
position at once as 1×1 convolutions of the feature map — the first with W/(h·w) — so no vectors are
gathered and the map comes out in its final (B, K, h, w) layout; a single linear layer then costs next
to nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.tracing import frozen_size

HeadFn = Callable[[Tensor], Tensor]
ScoreFn = Callable[..., Tensor]  # score_fn(logits, dim=-1): the model's score activation over the class dim


ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid,
               nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout)


def _is_flatten(head: fx.GraphModule, node: fx.Node) -> bool:
    """A reshape that only turns a pooled (N, C, 1, 1) into (N, C) (or the reverse), nothing else."""
    if node.op == "call_module":
        sub = head.get_submodule(node.target)
        return isinstance(sub, nn.Flatten) and sub.start_dim == 1 and sub.end_dim == -1
    args = [*node.args[1:], *node.kwargs.values()]
    if (node.op == "call_method" and node.target == "flatten") or node.target is torch.flatten:
        return args == [1]
    return node.op == "call_method" and node.target == "view" and len(args) == 4 and args[2:] == [1, 1]


def _graph_layers(head: fx.GraphModule) -> list[nn.Module] | None:
    """The modules of a traced head that is one chain of modules and flattens, in order, else None."""
    layers: list[nn.Module] = []
    previous = None
    for node in head.graph.nodes:
        if node.op == "output":
            return layers if node.args[0] is previous else None
        if node.op != "placeholder":
            if node.all_input_nodes != [previous]:
                return None
            if node.op == "call_module" and not _is_flatten(head, node):
                layers.append(head.get_submodule(node.target))
            elif not _is_flatten(head, node):
                return None
        previous = node
    return None


def pointwise_layers(head: nn.Module) -> list[nn.Module] | None:
    """The layers of a head made of Linear layers and element-wise modules (ending in a Linear), else None.

    ``head``: a module, an ``nn.Sequential`` or a traced head (``fx.GraphModule``: a chain of such modules
    and flattens of the pooled vector).
    """
    if isinstance(head, fx.GraphModule):
        layers = _graph_layers(head) or []
    else:
        layers = list(head.children()) if isinstance(head, nn.Sequential) else [head]
    if not layers or not isinstance(layers[-1], nn.Linear):
        return None
    return layers if all(isinstance(layer, (nn.Linear, *ELEMENTWISE)) for layer in layers) else None


def _pointwise_logits(layers: list[nn.Module], feature_map: Tensor, positions: int) -> Tensor:
    """The head on every position's pooled vector f[:, k]/(h·w) at once: (B, C', h, w) → (B, K, h, w)."""
    x, scale = feature_map, 1.0 / positions
    for layer in layers:
        if isinstance(layer, nn.Linear):
            x = F.conv2d(x, (layer.weight * scale)[:, :, None, None], layer.bias)
            scale = 1.0
        elif not isinstance(layer, nn.Dropout | nn.Identity):  # dropout: only used while none is active
            x = layer(x)
    return x


class ReciproCAM(ExplainAlgo):
    """Recipro-CAM over a CNN's last feature map.

    Args:
        head_on_feature_map: neck + head, (N, C', h, w) → logits (N, K).
        head_on_pooled: head alone on pooled vectors (N, C') → logits (N, K), given when the neck is
            global average pooling; enables the exact fast form.
        score_fn: the model's score activation (softmax for multiclass, sigmoid for multilabel), called
            as ``score_fn(logits, dim=...)`` with the class dim.
        max_chunk: most masked copies (or pooled vectors) evaluated at once; bounds peak memory.
        pointwise_head: the head module when ``head_on_pooled`` is Linear layers and element-wise modules
            (``pointwise_layers``): the 1×1-convolution form, used whenever no dropout in it is active.
    """

    name = "ReciproCAM"

    def __init__(
        self,
        head_on_feature_map: HeadFn,
        score_fn: HeadFn,
        head_on_pooled: HeadFn | None = None,
        max_chunk: int = 4096,
        pointwise_head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self._head_on_feature_map = head_on_feature_map
        self._head_on_pooled = head_on_pooled
        self._score_fn = score_fn
        self.max_chunk = max_chunk
        layers = pointwise_layers(pointwise_head) if pointwise_head is not None else []
        if layers is None:
            raise ValueError("pointwise_head must be Linear layers and element-wise modules, ending in a Linear")
        self._pointwise_layers = tuple(layers)  # a plain tuple: not submodules, no duplicate state-dict keys

    def saliency(self, feature_map: Tensor) -> Tensor:
        batch, channels = feature_map.shape[:2]
        height, width = frozen_size(feature_map, 2)  # constants when traced: an IR's input size is fixed
        positions = height * width
        layers = self._pointwise_layers
        if layers and not any(isinstance(layer, nn.Dropout) and layer.training and layer.p for layer in layers):
            images = max(1, self.max_chunk // positions)
            if torch.jit.is_tracing() or batch <= images:  # an IR runs each batch whole (a split would fix it)
                return self._score_fn(_pointwise_logits(layers, feature_map, positions), dim=1)  # (B, K, h, w)
            chunks = feature_map.split(images)
            return torch.cat([self._score_fn(_pointwise_logits(layers, chunk, positions), dim=1) for chunk in chunks])
        if self._head_on_pooled is not None:
            pooled = feature_map.flatten(2).transpose(1, 2) / positions  # (B, h·w, C')
            rows = pooled.reshape(-1, channels)
            if torch.jit.is_tracing() or rows.shape[0] <= self.max_chunk:  # an IR runs each batch whole
                scores = self._score_fn(self._head_on_pooled(rows), dim=-1)
            else:
                chunks = torch.split(rows, self.max_chunk)
                scores = torch.cat([self._score_fn(self._head_on_pooled(chunk), dim=-1) for chunk in chunks])
            scores = scores.view(batch, positions, -1)
        else:
            scores = self._masked_copy_scores(feature_map)
        return scores.transpose(1, 2).reshape(batch, -1, height, width)

    def _masked_copy_scores(self, feature_map: Tensor) -> Tensor:
        """Scores (B, h·w, K) of every single-position copy, at most ``max_chunk`` copies at a time: chunks of
        positions of all images, or, with more images than ``max_chunk``, one position of a few images."""
        images = max(1, self.max_chunk)
        if torch.jit.is_tracing() or feature_map.shape[0] <= images:  # an IR runs each batch whole
            return self._masked_copy_scores_of(feature_map)
        return torch.cat([self._masked_copy_scores_of(chunk) for chunk in feature_map.split(images)])

    def _masked_copy_scores_of(self, feature_map: Tensor) -> Tensor:
        batch = feature_map.shape[0]
        height, width = frozen_size(feature_map, 2)
        positions = height * width
        eye = torch.eye(positions, dtype=feature_map.dtype, device=feature_map.device)
        masks = eye.view(positions, 1, height, width)
        # an IR takes the chunks of one image (as traced): its batch is not known when it is built
        step = max(1, self.max_chunk if torch.jit.is_tracing() else self.max_chunk // max(1, batch))
        per_chunk = []
        for start in range(0, positions, step):
            copies = feature_map.unsqueeze(1) * masks[start : start + step]  # (B, n, C', h, w)
            logits = self._head_on_feature_map(copies.flatten(0, 1))
            per_chunk.append(self._score_fn(logits, dim=-1).view(batch, copies.shape[1], -1))
        return torch.cat(per_chunk, dim=1)
