"""XGrad-CAM (Fu et al., 2020): gradients weighted by the activation's share of its channel's sum.

    w_k = Σ_ij ∂y^c/∂A_k(i, j) · A_k(i, j) / (Σ_ab A_k(a, b) + ε),  L^c = ReLU(Σ_k w_k A_k),  ε = 1e-7.
"""

from __future__ import annotations

from torch import Tensor

from otx_xai.explain.methods.gradient.base import GradientCAM, weighted_sum

EPS = 1e-7


class XGradCAM(GradientCAM):
    """XGrad-CAM, as pytorch-grad-cam 1.5.7 computes it (``XGradCAM.get_cam_weights``)."""

    name = "XGradCAM"

    def combine(self, activations: Tensor, grads: Tensor) -> Tensor:
        activation_sums = activations.sum(dim=(-2, -1), keepdim=True)
        weights = (grads * activations / (activation_sums + EPS)).sum(dim=(-2, -1))
        return weighted_sum(weights, activations)
