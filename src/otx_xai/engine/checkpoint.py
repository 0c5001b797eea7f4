"""Loading a Lightning checkpoint into the recipe's model, with clear errors on any mismatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from otx_xai.engine.recipe import ModelSpec, import_class
from otx_xai.errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the problem and the fix."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, or a one-line error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found: pass an existing .ckpt, exported .xml or .onnx")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(error).__name__}") from None


def load_model(path: str | Path, spec: ModelSpec, label_names: list[str] | None) -> Any:
    """Build the recipe's model with the checkpoint's labels and weights.

    ``label_names`` (the dataset's, when it has labels) must equal the checkpoint's.
    """
    checkpoint = read_checkpoint(path)
    meta = checkpoint.get("otx_xai")
    if meta is None or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not an otx_xai checkpoint: pass a .ckpt written by otx train")
    if meta["class_path"] != spec.class_path:
        raise CheckpointError(f"{path} holds a {meta['class_path']} but the recipe builds a {spec.class_path}: "
                              "pass the recipe the checkpoint was trained with")
    saved = list(meta["label_names"])
    if label_names and list(label_names) != saved:
        raise CheckpointError(f"{path} was trained on {len(saved)} labels {saved} but the dataset has "
                              f"{len(label_names)} labels {list(label_names)}: use matching data or checkpoint")
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k != "label_names"}
    clashes = [f"{k}={hparams[k]!r} (recipe: {v!r})" for k, v in spec.init_args.items()
               if k not in ("lr", "weights") and k in hparams and hparams[k] != v]
    if clashes:
        raise CheckpointError(f"{path} holds a model with {', '.join(clashes)}: pass the recipe the checkpoint "
                              "was trained with")
    args = {**spec.init_args, **hparams, "weights": None}
    cls = import_class(spec.class_path)
    try:
        model = cls(label_names=saved, **args)
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit the recipe's model ({first}): pass the matching recipe") from None
    return model.eval()
