"""BatchNorm calibration of a random network for tests, in one place.

At torchvision's initial running statistics a deep random network's features fade (mobilenet_v3's and
efficientnet's to ~1e-10), so maps would be flat; measuring the statistics on a few random images gives
activations a realistic scale.
"""

from __future__ import annotations

import torch
from torch import nn


def random_batch(count: int, size: int, seed: int) -> torch.Tensor:
    """``count`` standard-normal images (3, size, size), the same for a seed."""
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


def calibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """``model`` with every BatchNorm's running statistics reset to their plain average over ``images``
    (one forward in train mode, no gradients); returned in eval mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # the plain average of the batches seen
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()
