"""DetClassProbabilityMap: class-probability saliency of single-stage detectors (SSD, RetinaNet, FCOS, ...).

Per pyramid level, the head's class logits (B, A·C, H_l, W_l) → max over the A anchors of each
location → bilinear resize to the middle level (index ``L // 2``) → mean over levels → softmax over
classes (skipped for a single class) → per-class min-max normalization to uint8.

Sigmoid-trained heads (RetinaNet, FCOS) get the softmax too: it contrasts the classes at each location.
A head with a background class (SSD) passes its logits with the background as the LAST of the C
channels (``background_last``): it takes part in the softmax (so probabilities are proper), then is
dropped (default) or kept as the last channel of the map (``keep_background``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from otx_xai.explain.methods.base import ExplainAlgo


def mean_of_levels(per_level: list[Tensor]) -> Tensor:
    """The element-wise mean of same-shaped maps, as a chain of adds: in an IR, stack + mean is a
    reference-kernel Concat copying every map before the reduction."""
    return functools.reduce(torch.add, per_level) / len(per_level)


class DetClassProbabilityMap(ExplainAlgo):
    """Saliency (B, C', h, w) from per-level class logits, h×w = the middle level's grid.

    Args:
        num_classes: C, the class channels per anchor, background included when ``background_last``.
        num_anchors: A per level (one int for every level, or one per level).
        use_softmax: softmax over classes after averaging the levels (never for C = 1).
        background_last: the last of the C channels is a background class.
        keep_background: with ``background_last``, keep its map as the last channel (C' = C) instead of
            dropping it (C' = C − 1).
    """

    name = "DetClassProbabilityMap"

    def __init__(
        self,
        num_classes: int,
        num_anchors: int | list[int] = 1,
        use_softmax: bool = True,
        background_last: bool = False,
        keep_background: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        self.use_softmax = use_softmax
        self.background_last = background_last
        self.keep_background = keep_background

    def _anchors(self, level: int) -> int:
        return self.num_anchors if isinstance(self.num_anchors, int) else self.num_anchors[level]

    def saliency(self, *cls_logits: Tensor) -> Tensor:
        """Float saliency from each level's class logits (B, A·C, H_l, W_l), ordered fine to coarse."""
        if not cls_logits:
            raise ValueError("DetClassProbabilityMap needs the class logits of at least one pyramid level")
        size = cls_logits[len(cls_logits) // 2].shape[-2:]
        per_level = []
        for index, logits in enumerate(cls_logits):
            per_anchor = logits.unflatten(1, (self._anchors(index), self.num_classes))  # (B, A, C, H, W)
            level_map = per_anchor.amax(dim=1)  # amax: max(dim).values also builds indices, 5x slower here
            # at the middle level's own size this is the identity (bilinear, half-pixel centres)
            per_level.append(F.interpolate(level_map, size=size, mode="bilinear", align_corners=False))
        saliency = mean_of_levels(per_level)
        if self.use_softmax and self.num_classes > 1:
            saliency = saliency.softmax(dim=1)
        if self.background_last and not self.keep_background:
            saliency = saliency[:, :-1]
        return saliency
