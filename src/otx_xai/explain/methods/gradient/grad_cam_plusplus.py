"""Grad-CAM++ (Chattopadhay et al., 2018): positive gradients weighted by the closed-form α of its Eq. 19.

    α_ij = g² / (2 g² + Σ_ab A_ab · g³ + ε),  α = 0 where g = 0,  w_k = Σ_ij ReLU(g_ij) α_ij,
    L^c = ReLU(Σ_k w_k A_k),   ε = 1e-6, as pytorch-grad-cam 1.5.7.
"""

from __future__ import annotations

import torch
from torch import Tensor

from otx_xai.explain.methods.gradient.base import GradientCAM, weighted_sum

EPS = 1e-6


class GradCAMPlusPlus(GradientCAM):
    """Grad-CAM++, as pytorch-grad-cam 1.5.7 computes it (``GradCAMPlusPlus.get_cam_weights``)."""

    name = "GradCAMPlusPlus"

    def combine(self, activations: Tensor, grads: Tensor) -> Tensor:
        squared = grads * grads
        cubed = squared * grads
        activation_sums = activations.sum(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
        alpha = squared / (2 * squared + activation_sums * cubed + EPS)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        weights = (grads.relu() * alpha).sum(dim=(-2, -1))
        return weighted_sum(weights, activations)
