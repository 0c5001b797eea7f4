"""Model-parameter randomization sanity check (Adebayo et al., 2018).

The classifier head is re-initialized at random and every image is explained again; a faithful method's
maps should change. The similarity of the two maps (Spearman rank correlation over the feature grid)
is reported per image; when the median stays above ``explain.index_summary.SANITY_FLAG_ABOVE`` the maps
barely depend on what the model learned and the run's summary flags it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from otx_xai.errors import InterfaceError


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties given their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape (0 when either is constant)."""
    a, b = _ranks(first.ravel().astype(np.float64)), _ranks(second.ravel().astype(np.float64))
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def head_modules(model: Any) -> list[torch.nn.Module]:
    """The classifier head of our model families (CNN ``head``, ViT ``vit.heads``)."""
    if hasattr(model, "head"):
        return [model.head]
    if hasattr(model, "vit"):
        return [model.vit.heads]
    raise InterfaceError(f"the sanity check needs a classifier head; {type(model).__name__} has none it knows")


def randomized_head_copy(model: Any, seed: int = 0) -> Any:
    """A deep copy of ``model`` whose classifier head has fresh random weights."""
    clone = copy.deepcopy(model).eval()
    torch.manual_seed(seed)
    for head in head_modules(clone):
        for module in head.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return clone
