"""Grad-CAM (Selvaraju et al., 2017): channel weights are the spatially averaged gradients of the class logit.

    α_k^c = mean_{i,j} ∂y^c/∂A_k(i, j),   L^c = ReLU(Σ_k α_k^c A_k)
"""

from __future__ import annotations

from torch import Tensor

from otx_xai.explain.methods.gradient.base import GradientCAM, weighted_sum


class GradCAM(GradientCAM):
    """Grad-CAM, as pytorch-grad-cam 1.5.7 computes it (``GradCAM.get_cam_weights``)."""

    name = "GradCAM"

    def combine(self, activations: Tensor, grads: Tensor) -> Tensor:
        return weighted_sum(grads.mean(dim=(-2, -1)), activations)
