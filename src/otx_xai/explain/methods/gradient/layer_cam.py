"""LayerCAM (Jiang et al., 2021): every position weighted by its own positive gradient, no channel pooling.

    L^c(i, j) = ReLU(Σ_k ReLU(∂y^c/∂A_k(i, j)) · A_k(i, j))
"""

from __future__ import annotations

from torch import Tensor

from otx_xai.explain.methods.gradient.base import GradientCAM


class LayerCAM(GradientCAM):
    """LayerCAM, as pytorch-grad-cam 1.5.7 computes it (``LayerCAM.get_cam_image``)."""

    name = "LayerCAM"

    def combine(self, activations: Tensor, grads: Tensor) -> Tensor:
        return (grads.relu() * activations).sum(dim=-3)
