"""Eigen-CAM (Muhammad & Yeasin, 2020): the first principal component of the feature map, class-agnostic.

Read a feature map f (C, h, w) as the matrix A (h·w, C), one row per position. The map is A·v₁, the
projection of each position's C-vector on the first right singular vector v₁ of A (= σ₁·u₁, the first
left singular vector). A is not centred, as in the paper: the mean activation is part of what the map
shows (centring would make it the first principal component of the deviations instead). A singular
vector's sign is arbitrary: it is fixed so that the map sums to a positive value over the positions, i.e.
the map is positive where the activations are (for a non-negative, ReLU feature map it is non-negative).

No SVD routine is called, so the same arithmetic traces into an OpenVINO IR: the smaller Gram matrix G
(A·Aᵀ, h·w × h·w, or Aᵀ·A, C × C) is squared ``squarings`` times, divided by its Frobenius norm each time,
which is power iteration with 2^squarings steps: G^(2^s) ∝ v₁v₁ᵀ + O((σ₂/σ₁)^(2^(s+1))). Applied to the
start vector 1 (resp. Aᵀ·1) it gives u₁·(u₁·1) up to a positive factor, whose sum over the positions,
(u₁·1)², is never negative: the sign rule comes out of the iteration itself.
"""

from __future__ import annotations

from torch import Tensor

from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.tracing import frozen_size

SQUARINGS = 16  # 65536 power-iteration steps: exact to float precision unless σ₂/σ₁ > 0.9999


class EigenCAM(ExplainAlgo):
    """The first principal component of a (B, C, h, w) feature map → (B, 1, h, w), one map per image."""

    name = "EigenCAM"

    def __init__(self, squarings: int = SQUARINGS) -> None:
        super().__init__()
        self.squarings = squarings

    def saliency(self, feature_map: Tensor) -> Tensor:
        batch = feature_map.shape[0]
        channels, height, width = frozen_size(feature_map, 1)  # constants when traced: the input size is fixed
        rows = feature_map.flatten(2).transpose(1, 2)  # A: (B, h·w, C)
        by_position = height * width <= channels
        if by_position:
            gram = rows @ rows.transpose(1, 2)  # A·Aᵀ (B, h·w, h·w)
            start = feature_map.new_ones(1, gram.shape[1], 1)
        else:
            gram = rows.transpose(1, 2) @ rows  # Aᵀ·A (B, C, C)
            start = rows.sum(dim=1, keepdim=True).transpose(1, 2)  # Aᵀ·1 (B, C, 1)
        for _ in range(self.squarings):
            gram = gram / gram.square().sum(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-30)
            gram = gram @ gram
        component = gram @ start
        if not by_position:
            component = rows @ component  # A·v₁ (B, h·w, 1)
        return component.transpose(1, 2).reshape(batch, 1, height, width)
