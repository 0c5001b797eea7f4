"""Inputs and model preparation every benchmark uses: fixed random images, map differences, BatchNorm
calibration of a random network, a swapped-in explainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


def random_images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed batch of normalized-looking float32 images (B, 3, size, size)."""
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def max_grey_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Largest absolute difference of two uint8 maps, in grey levels."""
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@contextlib.contextmanager
def swapped_explainer(model: torch.nn.Module, explainer: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` with ``model.explainer`` replaced by ``explainer`` for the duration (e.g. a direct form)."""
    original = model.explainer
    model.explainer = explainer
    try:
        yield model
    finally:
        model.explainer = original


def calibrate_batchnorm_(model: torch.nn.Module, size: int, seed: int = 0) -> None:
    """Running BatchNorm statistics from a few random images, so a random network's features have a
    realistic scale (torchvision's initial statistics make mobilenet's features vanish) and maps are
    not degenerate. Leaves the model in eval mode."""
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for module in batchnorms:
        module.reset_running_stats()
        module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(random_images(4, size, seed)))
    model.eval()
