"""Loading pretrained weights from a local file: nothing is downloaded at run time."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torchvision
from torch import nn

from otx_xai.errors import MissingFileError, UserError

log = logging.getLogger(__name__)


def resolve_weights_path(weights: str) -> Path:
    """Find a weights file by path, or by file name in torchvision's cache under TORCH_HOME."""
    candidate = Path(weights).expanduser()
    if candidate.is_file():
        return candidate
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    cached = torch_home / "hub" / "checkpoints" / candidate.name
    if cached.is_file():
        return cached
    raise MissingFileError(
        f"pretrained weights {weights!r} not found (looked at {candidate} and {cached}); this machine "
        "cannot download them: copy the file there, or set weights: null in the recipe to start from random"
    )


def load_backbone_weights(model: nn.Module, weights: str) -> list[str]:
    """Load a torchvision state dict into ``model``: every tensor whose shape matches, so a classifier
    sized for the model's labels is kept; the names of those whose shape differs (a classifier for other
    labels, left as the model initialized it) are returned and logged."""
    state = torch.load(resolve_weights_path(weights), map_location="cpu", weights_only=True)
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not kept:
        raise UserError(f"weights file {weights!r} holds no tensor matching this model: wrong architecture?")
    differing = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if differing:
        shapes = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in differing[:4])
        log.warning("weights %s: %d tensor(s) do not fit this model's shape (%s): re-created at random, as for "
                    "a classifier whose labels differ from the file's", weights, len(differing), shapes)
    else:
        log.info("weights %s: all %d tensors loaded (the classifier kept)", weights, len(kept))
    model.load_state_dict(kept, strict=False)
    return differing


def torchvision_categories(backbone: str) -> list[str]:
    """The class names of the torchvision weights of ``backbone`` (``Weights.meta["categories"]``, part
    of the installed code: nothing is downloaded); a one-line error for a name with none."""
    try:
        categories = torchvision.models.get_model_weights(backbone).DEFAULT.meta.get("categories")
    except (ValueError, KeyError):
        categories = None
    if not categories:
        raise UserError(f"torchvision has no weights with categories for {backbone!r}: give model.label_names_file "
                         "as a text file with one class name per line")
    return list(categories)
