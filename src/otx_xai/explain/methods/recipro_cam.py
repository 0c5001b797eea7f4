"""Recipro-CAM (Byun & Lee, 2022): gradient-free class activation maps for CNN classifiers.

For a feature map f (C', h, w) build h·w copies, copy k keeping only spatial position k; the score of
class c on copy k, after the model's own neck and head, is the saliency of position k for class c.
When the neck is global average pooling, copy k pools to f[:, k] / (h·w), so the copies never need
to be materialized: the head runs on h·w vectors per image instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from otx_xai.explain.methods.base import ExplainAlgo

HeadFn = Callable[[Tensor], Tensor]


class ReciproCAM(ExplainAlgo):
    """Recipro-CAM over a CNN's last feature map.

    Args:
        head_on_feature_map: neck + head, (N, C', h, w) → logits (N, K).
        head_on_pooled: head alone on pooled vectors (N, C') → logits (N, K), given when the neck is
            global average pooling; enables the exact fast form.
        score_fn: the model's score activation (softmax for multiclass, sigmoid for multilabel).
        max_chunk: most masked copies (or pooled vectors) evaluated at once; bounds peak memory.
    """

    name = "ReciproCAM"

    def __init__(
        self,
        head_on_feature_map: HeadFn,
        score_fn: HeadFn,
        head_on_pooled: HeadFn | None = None,
        max_chunk: int = 4096,
    ) -> None:
        super().__init__()
        self._head_on_feature_map = head_on_feature_map
        self._head_on_pooled = head_on_pooled
        self._score_fn = score_fn
        self.max_chunk = max_chunk

    def saliency(self, feature_map: Tensor) -> Tensor:
        batch, channels, height, width = feature_map.shape
        positions = height * width
        if self._head_on_pooled is not None:
            pooled = feature_map.flatten(2).transpose(1, 2) / positions  # (B, h·w, C')
            rows = pooled.reshape(-1, channels)
            if rows.shape[0] <= self.max_chunk:  # always so when traced with one image
                scores = self._score_fn(self._head_on_pooled(rows))
            else:
                chunks = torch.split(rows, self.max_chunk)
                scores = torch.cat([self._score_fn(self._head_on_pooled(chunk)) for chunk in chunks])
            scores = scores.view(batch, positions, -1)
        else:
            scores = self._masked_copy_scores(feature_map)
        return scores.transpose(1, 2).reshape(batch, -1, height, width)

    def _masked_copy_scores(self, feature_map: Tensor) -> Tensor:
        """Scores (B, h·w, K) of every single-position copy, built chunk by chunk of positions."""
        batch, _, height, width = feature_map.shape
        positions = height * width
        eye = torch.eye(positions, dtype=feature_map.dtype, device=feature_map.device)
        masks = eye.view(positions, 1, height, width)
        step = max(1, self.max_chunk // max(1, batch))
        per_chunk = []
        for start in range(0, positions, step):
            copies = feature_map.unsqueeze(1) * masks[start : start + step]  # (B, n, C', h, w)
            logits = self._head_on_feature_map(copies.flatten(0, 1))
            per_chunk.append(self._score_fn(logits).view(batch, copies.shape[1], -1))
        return torch.cat(per_chunk, dim=1)
