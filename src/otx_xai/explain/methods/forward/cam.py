"""CAM (Zhou et al., 2016): the classifier row of class c weights the last feature map.

    L^c(i, j) = Σ_k W[c, k] · A_k(i, j)

For networks whose head is global average pooling and one Linear layer (dropout aside), the logit of
class c is the spatial mean of this map plus the bias, so the map says where the logit comes from. It is
one 1×1 convolution of the feature map (no ReLU, as the paper and torchcam 0.5.0), traceable into an IR.
Any other head has no such row: use Grad-CAM there (its identity with CAM on these heads is the Grad-CAM
paper's Sec. 3.1).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from otx_xai.errors import UserError
from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.methods.forward.recipro_cam import pointwise_layers


def cam_classifier(pooled_head: nn.Module | None, model_name: str = "this model") -> nn.Linear:
    """The one Linear layer of a global-average-pooling head (dropout and identities aside), else a UserError."""
    layers = pointwise_layers(pooled_head) if pooled_head is not None else None
    linear = [layer for layer in layers or [] if not isinstance(layer, nn.Dropout | nn.Identity)]
    if len(linear) != 1 or not isinstance(linear[0], nn.Linear):
        raise UserError(f"CAM needs a head of global average pooling and one Linear layer, which {model_name} "
                        "does not have: use GradCAM (the same map on such heads, any head otherwise)")
    return linear[0]


class CAM(ExplainAlgo):
    """CAM over a feature map (B, C, h, w) → (B, K, h, w), with the weights of ``classifier`` (K, C).

    The Linear layer is held outside the module tree (no duplicate state-dict keys): the model owns it.
    """

    name = "CAM"

    def __init__(self, classifier: nn.Linear) -> None:
        super().__init__()
        self._classifier = (classifier,)

    def saliency(self, feature_map: Tensor) -> Tensor:
        weight = self._classifier[0].weight
        return F.conv2d(feature_map, weight[:, :, None, None].to(feature_map.dtype))
