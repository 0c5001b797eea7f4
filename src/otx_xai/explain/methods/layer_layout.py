"""Whether a layer picked by name (``--explain_layer``) gives a channels-last map.

Swin's stages give (B, h, w, C): the network itself moves the channels forward only at its end
(``permute(0, 3, 1, 2)`` before pooling). So the traced graph is read forward from the layer's output: the
first 4-D permute on the way tells the layout the network reads the tensor in. ``(0, 3, 1, 2)`` means
it was channels-last (Swin); ``(0, 2, 3, 1)`` means channels-first (a ConvNeXt block's own round trip);
no 4-D permute at all (a ResNet stage) means channels-first.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor, fx
from torchvision.ops.misc import Permute

CHANNELS_FIRST = (0, 3, 1, 2)  # the permute that turns (B, h, w, C) into (B, C, h, w)


def _permute_dims(node: fx.Node) -> tuple[int, ...] | None:
    """The dims of a permute node (``x.permute(...)`` or ``torch.permute(x, dims)``), else None."""
    if node.op == "call_method" and node.target == "permute":
        dims = node.args[1:] if len(node.args) > 2 or not isinstance(node.args[1], (list, tuple)) else node.args[1]
    elif node.op == "call_function" and node.target is torch.permute:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dims")
    elif node.op == "call_module" and node.graph.owning_module is not None:  # torchvision's Permute, a leaf
        module = node.graph.owning_module.get_submodule(str(node.target))
        if not isinstance(module, Permute):
            return None
        dims = module.dims
    else:
        return None
    return tuple(int(d) for d in dims) if all(isinstance(d, int) for d in dims) else None


def reads_channels_last(node: fx.Node, limit: int = 2000) -> bool:
    """Whether the graph after ``node`` treats its 4-D output as (B, h, w, C) (see the module doc)."""
    seen: set[fx.Node] = set()
    queue = deque([node])
    while queue and len(seen) < limit:
        for user in queue.popleft().users:
            if user in seen:
                continue
            seen.add(user)
            dims = _permute_dims(user)
            if dims is not None and len(dims) == 4:
                return dims == CHANNELS_FIRST
            queue.append(user)
    return False


def channels_first(activation: Tensor) -> Tensor:
    """A channels-last (B, h, w, C) map, or its gradient, as (B, C, h, w)."""
    return activation.permute(0, 3, 1, 2)
