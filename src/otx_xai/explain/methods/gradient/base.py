"""What every gradient CAM shares: the gradients of many classes' logits at once, and the map they weight.

The map of class c is computed at an activation A (the traced cut's feature map, or a module picked by
name) from the gradient of the class's raw logit y_c with respect to A. The part of the network after A
is run once with autograd on; the gradients of all requested (image, class) pairs then come from
batched backward passes (``torch.autograd.grad(..., is_grads_batched=True)``): one vectorized pass per
chunk of at most ``max_chunk`` maps, never one backward pass per class. ALL computes every class,
PREDICTIONS (and IMAGE) only the predicted ones (top-1, or every score above the threshold when
multilabel); the other channels stay zero.

Lightning predicts under ``torch.inference_mode``, whose tensors cannot enter autograd: the activation is
cloned into a normal tensor inside ``torch.inference_mode(False)`` with gradients enabled, so the methods
work inside the Trainer, under ``no_grad`` (training-time probes) and in plain code alike.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from otx_xai.explain.methods.base import ExplainAlgo

HeadFn = Callable[[Tensor], Tensor]
GridFn = Callable[[Tensor], Tensor]
ALL, PREDICTIONS = "ALL", "PREDICTIONS"


def as_grid(activation: Tensor) -> Tensor:
    """A (B, C, h, w) activation as it is."""
    return activation


def target_classes(logits: Tensor, group: str, multilabel: bool, threshold: float) -> Tensor:
    """Class indices to explain, (N, B): row n holds each image's n-th class, −1 where an image has fewer.

    ALL: every class for every image; otherwise the predicted ones (top-1, or multilabel scores > threshold).
    """
    batch, classes = logits.shape
    if group == ALL:
        return torch.arange(classes, device=logits.device)[:, None].expand(classes, batch)
    if not multilabel:
        return logits.argmax(dim=-1)[None]
    chosen = torch.sigmoid(logits) > threshold  # (B, K)
    count = int(chosen.sum(dim=1).max()) if batch else 0
    ranked = torch.where(chosen, torch.arange(classes, device=logits.device), classes).sort(dim=1).values
    ranked = ranked[:, :count].T  # (N, B): the chosen classes first, in label order
    return torch.where(ranked < classes, ranked, -1)


def batched_gradients(output: Tensor, activation: Tensor, classes: Tensor, max_chunk: int
                      ) -> Iterator[tuple[Tensor, Tensor]]:
    """Per chunk of class rows: (its rows of ``classes`` (n, B), d y[b, classes[j, b]] / d activation (n, *A)).

    ``output`` (B, K) must have been computed from ``activation`` with autograd on; at most ``max_chunk``
    gradient maps (n·B) are held at once (at least one row of the batch).
    """
    batch, count = output.shape
    rows = max(1, max_chunk // max(1, batch))
    for start in range(0, classes.shape[0], rows):
        chunk = classes[start:start + rows]
        seeds = output.new_zeros(chunk.shape[0], batch, count)
        seeds.scatter_(2, chunk.clamp_min(0)[..., None], (chunk >= 0)[..., None].to(output.dtype))
        (grads,) = torch.autograd.grad(output, activation, seeds, retain_graph=True, is_grads_batched=True)
        yield chunk, grads


class GradientCAM(ExplainAlgo):
    """A CAM computed from the gradients of raw class logits at an activation.

    Subclasses implement ``combine`` (their paper's formula, as pytorch-grad-cam 1.5.7 computes it); the
    base takes the ReLU, and ``forward`` normalizes each map to uint8 0..255 (min-max over its own h×w).

    Args:
        head: the network after the activation: activation → logits (B, K) (the traced cut's neck + head).
        multilabel: PREDICTIONS picks every class whose sigmoid score exceeds ``conf_threshold``, else top-1.
        max_chunk: most gradient maps (image × class) held at once: bounds the extra memory.
        to_grid: activation (or its gradient) → (B, C, h, w) grid (a ViT: patch tokens without CLS).
    """

    name = "GradientCAM"

    def __init__(self, head: HeadFn | None, multilabel: bool = False, max_chunk: int = 4096,
                 to_grid: GridFn = as_grid) -> None:
        super().__init__()
        self._head = head
        self.multilabel = multilabel
        self.max_chunk = max_chunk
        self.target_group = ALL
        self.conf_threshold = 0.3
        self._to_grid = to_grid

    def configure(self, target_group: str, conf_threshold: float, max_chunk: int) -> None:
        """Which classes to compute (ALL, or PREDICTIONS / IMAGE: the predicted ones) and the chunk bound."""
        self.target_group = ALL if str(getattr(target_group, "value", target_group)) == ALL else PREDICTIONS
        self.conf_threshold = float(conf_threshold)
        self.max_chunk = int(max_chunk)

    @abstractmethod
    def combine(self, activations: Tensor, grads: Tensor) -> Tensor:
        """Maps before the ReLU, (n, B, h, w), from activations (B, C, h, w) and gradients (n, B, C, h, w)."""

    def saliency(self, activation: Tensor, logits: Tensor | None = None) -> Tensor:
        """Maps (B, K, h, w) of the classes the target group asks for (the others zero), from the activation
        the network's ``head`` continues from; ``logits`` pick the predicted classes (None: the head's)."""
        if self._head is None:
            raise TypeError(f"{self.name} was built without a head: use saliency_from_graph")
        with torch.inference_mode(False), torch.enable_grad():
            leaf = activation.detach().clone().requires_grad_(True)
            output = self._head(leaf)
            return self.saliency_from_graph(leaf, output, logits)

    def saliency_from_graph(self, activation: Tensor, output: Tensor, logits: Tensor | None = None) -> Tensor:
        """Maps (B, K, h, w) from an ``activation`` that requires grad and the ``output`` computed from it."""
        with torch.inference_mode(False), torch.enable_grad():
            chosen = logits if logits is not None else output
            classes = target_classes(chosen.detach(), self.target_group, self.multilabel, self.conf_threshold)
            grid = self._to_grid(activation.detach())
            batch, count = output.shape
            maps = grid.new_zeros(batch, count, *grid.shape[2:])
            images = torch.arange(batch, device=grid.device)
            for rows, grads in batched_gradients(output, activation, classes, self.max_chunk):
                grads = self._to_grid(grads.flatten(0, 1)).unflatten(0, (rows.shape[0], batch))
                chunk_maps = self.combine(grid, grads).relu()
                valid = rows >= 0
                maps[images.expand_as(rows)[valid], rows[valid]] = chunk_maps[valid]
            return maps.detach()


def weighted_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """Σ_k weights[n, b, k] · A[b, k]: (n, B, C) with (B, C, h, w) → (n, B, h, w)."""
    return torch.einsum("nbc,bchw->nbhw", weights, activations)
