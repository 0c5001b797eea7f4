"""Loading pretrained weights from a local file: nothing is downloaded at run time."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def resolve_weights_path(weights: str) -> Path:
    """Find a weights file by path, or by file name in torchvision's cache under TORCH_HOME."""
    candidate = Path(weights).expanduser()
    if candidate.is_file():
        return candidate
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    cached = torch_home / "hub" / "checkpoints" / candidate.name
    if cached.is_file():
        return cached
    raise FileNotFoundError(
        f"pretrained weights {weights!r} not found (looked at {candidate} and {cached}); this machine "
        "cannot download them: copy the file there, or set weights: null in the recipe to start from random"
    )


def load_backbone_weights(model: nn.Module, weights: str) -> None:
    """Load a torchvision state dict into ``model``, skipping the classifier whose shape differs."""
    state = torch.load(resolve_weights_path(weights), map_location="cpu", weights_only=True)
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not kept:
        raise ValueError(f"weights file {weights!r} holds no tensor matching this model: wrong architecture?")
    model.load_state_dict(kept, strict=False)
