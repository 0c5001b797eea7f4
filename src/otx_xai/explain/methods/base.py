"""Shared pieces of every explain algorithm: the base module and map normalization."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn


def normalize_map(saliency: Tensor) -> Tensor:
    """Scale each (h, w) map of a (B, C, h, w) tensor to 0..255 over its own spatial dims, as uint8.

    Rounds to the nearest grey level before the cast, so torch and OpenVINO (whose float→int
    conversions differ) give the same integers. A constant map becomes all zeros.
    """
    saliency = saliency.float()
    low = saliency.amin(dim=(-2, -1), keepdim=True)  # plain reductions over (h, w): no reshapes in an IR
    high = saliency.amax(dim=(-2, -1), keepdim=True)
    scaled = (saliency - low) / (high - low).clamp_min(1e-30) * 255.0  # exact: an additive eps squashes tiny ranges
    return torch.floor(scaled + 0.5).clamp(0.0, 255.0).to(torch.uint8)


class ExplainAlgo(nn.Module, ABC):
    """An explain algorithm: turns what a model computed into raw per-class saliency (B, C, h, w).

    Subclasses implement ``saliency`` (float, any scale); ``forward`` normalizes it to uint8.
    The algorithm holds no parameters of its own: it only reads the model it explains.
    """

    name: str = "base"

    @abstractmethod
    def saliency(self, *inputs: Tensor) -> Tensor:
        """Per-class saliency, float (B, C, h, w)."""

    def forward(self, *inputs: Tensor) -> Tensor:
        return normalize_map(self.saliency(*inputs))
