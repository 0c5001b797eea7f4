"""Score-CAM's computation (Wang et al. 2020, as the paper's official code computes it), plain torch.

For one image x and its feature map A (C, h, w) at the traced cut:

- every channel A_k is upsampled to the input size (bilinear, ``align_corners=False``) and min-max
  normalized to [0, 1]: the mask M_k; a constant channel has no mask and is skipped (weight 0, no NaN);
- the weight of channel k for class c is the model's score of class c on x ⊙ M_k (softmax over the
  classes; sigmoid for a multilabel model);
- the map of class c is ReLU(Σ_k w_ck · U(A_k)), U the same upsampling, at the input size; the caller
  min-max normalizes it (``normalize_map``).

The C masked forwards do not depend on the class: one set of them gives every class's weights, so K
classes cost what one costs. Masked inputs are made and scored ``chunk`` at a time, across the images
of the batch, so memory stays bounded whatever C and the batch size are. Since U is linear,
Σ_k w_ck U(A_k) = U(Σ_k w_ck A_k): the weighted sum is taken at the feature grid and upsampled once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

ScoreFn = Callable[[Tensor], Tensor]
"""Masked preprocessed images (n, 3, H, W) float32 → class scores (n, K) (softmax or sigmoid)."""


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, C, h, w) maps at ``size`` (H, W): bilinear, ``align_corners=False`` (the official code's)."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def channel_masks(channels: Tensor, size: tuple[int, int]) -> Tensor:
    """Masks (n, H, W) in [0, 1] of non-constant channels (n, h, w): upsampled, then min-max normalized."""
    up = upsample(channels[:, None], size)[:, 0]
    low = up.amin(dim=(-2, -1), keepdim=True)
    high = up.amax(dim=(-2, -1), keepdim=True)
    return (up - low) / (high - low).clamp_min(1e-30)


def varying_channels(feature_maps: Tensor) -> Tensor:
    """Indices (M, 2) of (image, channel) pairs whose map (h, w) is not constant: the masks to score."""
    flat = feature_maps.flatten(2)
    return torch.nonzero(flat.amax(dim=-1) > flat.amin(dim=-1))


def score_cam_weights(images: Tensor, feature_maps: Tensor, score_fn: ScoreFn, num_classes: int,
                      chunk: int) -> Tensor:
    """Channel weights (B, K, C): class scores of every image masked by each of its channels (0: constant).

    ``chunk``: most masked images made and scored at once (one ``score_fn`` call).
    """
    batch, channels = feature_maps.shape[:2]
    size = (int(images.shape[-2]), int(images.shape[-1]))
    weights = images.new_zeros(batch, channels, num_classes)
    pairs = varying_channels(feature_maps)
    for start in range(0, len(pairs), max(1, int(chunk))):
        image_index, channel = pairs[start : start + chunk].unbind(1)
        masks = channel_masks(feature_maps[image_index, channel].float(), size)
        scores = score_fn(images[image_index] * masks[:, None])
        weights[image_index, channel] = scores.to(weights.dtype)
    return weights.transpose(1, 2)


def score_cam_saliency(feature_maps: Tensor, weights: Tensor, size: tuple[int, int]) -> Tensor:
    """Float maps (B, K, H, W): ReLU(U(Σ_k w_ck A_k)) for weights (B, K, C) and feature maps (B, C, h, w)."""
    combined = torch.einsum("bkc,bchw->bkhw", weights, feature_maps.to(weights.dtype))
    return F.relu(upsample(combined, size))
