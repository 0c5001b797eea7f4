"""``--explain_layer`` on a module the model calls itself (a ViT's): its output as a leaf autograd stops at.

A forward hook replaces the module's output by a detached copy that requires grad, so the gradients of
the logits stop there (nothing before it is differentiated) and the network's output is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor, nn

from otx_xai.errors import UserError


@contextmanager
def tapped(module: nn.Module) -> Iterator[list[Tensor]]:
    """Inside: each output of ``module`` is replaced by a leaf copy requiring grad, appended to the list."""
    captured: list[Tensor] = []

    def hook(_module: nn.Module, _inputs: object, output: Tensor) -> Tensor:
        if not isinstance(output, Tensor):
            raise UserError(f"explain_layer {type(module).__name__} returns {type(output).__name__}, not a tensor: "
                            "pick a module whose output is a feature map (B, C, h, w)")
        leaf = output.detach().clone().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()  # not the leaf itself: the network may change its output in place (x += identity)

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
