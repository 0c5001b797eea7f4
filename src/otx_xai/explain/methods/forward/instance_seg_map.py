"""Instance segmentation saliency: per class, the score-weighted mean of the predicted masks of that class.

For class c over the N (padded) instances of an image::

    map_c = sum_n score_n * [label_n == c] * mask_n / sum_n score_n * [label_n == c]

and 0 where the image has no instance of c (padding has score 0, so it never counts). Each map is then
min-max normalized to 0..255; a class with no instance keeps an all-zero map.

The maps are computed at ``output_size`` (the feature grid, e.g. the middle pyramid level): masks are
area-averaged down to it first, which gives the same result as averaging at full size and downsampling
afterwards (both steps are linear), for a fraction of the memory. Batched and free of Python loops over
images or instances, so it traces into the IR as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from otx_xai.explain.methods.base import ExplainAlgo, normalize_map


class InstSegMaskMap(ExplainAlgo):
    """Saliency of an instance segmentation model from its own predicted masks.

    Args:
        num_classes: K, the number of output channels (label indices 0..K-1; background excluded).
    """

    name = "InstSegMaskAggregation"

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def saliency(
        self, masks: Tensor, scores: Tensor, labels: Tensor, output_size: tuple[int, int] | None = None
    ) -> Tensor:
        """Float (B, K, h, w) maps from masks (B, N, H, W) in 0..1, scores (B, N) and labels (B, N).

        ``output_size`` (h, w) defaults to the mask size; padded instances carry score 0.
        """
        if output_size is not None:
            masks = F.adaptive_avg_pool2d(masks, output_size)
        classes = torch.arange(self.num_classes, device=labels.device).view(1, 1, -1)
        weights = (labels.unsqueeze(-1) == classes).to(masks.dtype) * scores.unsqueeze(-1).to(masks.dtype)
        total = weights.sum(dim=1)  # (B, K)
        weighted = torch.matmul(weights.transpose(1, 2), masks.flatten(2))  # (B, K, h*w)
        mean = weighted / total.clamp_min(1e-12).unsqueeze(-1)
        return mean.unflatten(2, (masks.shape[-2], masks.shape[-1]))

    def forward(  # type: ignore[override]
        self, masks: Tensor, scores: Tensor, labels: Tensor, output_size: tuple[int, int] | None = None
    ) -> Tensor:
        """uint8 (B, K, h, w) maps, each min-max normalized; classes with no instance are all zeros."""
        return normalize_map(self.saliency(masks, scores, labels, output_size))
