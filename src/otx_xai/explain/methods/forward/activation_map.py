"""Activation Map: the channel mean of a feature map, class-agnostic."""

from __future__ import annotations

from torch import Tensor

from otx_xai.explain.methods.base import ExplainAlgo


class ActivationMap(ExplainAlgo):
    """Mean over channels of a (B, C', h, w) feature map → (B, 1, h, w)."""

    name = "ActivationMap"

    def saliency(self, feature_map: Tensor) -> Tensor:
        return feature_map.mean(dim=1, keepdim=True)
