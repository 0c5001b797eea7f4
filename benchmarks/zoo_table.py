"""The README's zoo table: every torchvision classification model → explain method → map size.

Builds each model through ``ImageClassifier`` on PyTorch's meta device (shapes only: no memory, no
arithmetic, so the giants are listed too) and prints a Markdown table:

    python benchmarks/zoo_table.py > /tmp/zoo.md
"""

from __future__ import annotations

import logging
import warnings

import torch
import torchvision

from otx_xai.models.classification import ImageClassifier
from otx_xai.quiet import quiet

SIZE = 224  # every torchvision classifier's native input size


def head_form(model: ImageClassifier) -> str:
    """Which form of the method runs (README "The algorithms")."""
    if hasattr(model, "vit"):
        return "fast CLS row"
    explainer = model.explainer
    if getattr(explainer, "_pointwise_layers", ()):
        return "pooled, 1×1-conv head"
    if getattr(explainer, "_head_on_pooled", None) is not None:
        return "pooled vectors"
    return "masked copies"


def explained(name: str, device: str) -> tuple[ImageClassifier, tuple[int, ...]]:
    with torch.device(device), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = ImageClassifier([str(i) for i in range(1000)], backbone=name).eval()
        return model, tuple(model.forward_explain(torch.zeros(1, 3, SIZE, SIZE))["saliency_map"].shape[2:])


def row(name: str) -> str:
    try:
        model, grid = explained(name, "meta")
    except NotImplementedError:  # a builder that computes with tensors (regnet): build it for real
        model, grid = explained(name, "cpu")
    params = torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"] / 1e6
    form = head_form(model) if model.explain_method != "ActivationMap" else "fallback"
    return f"| {name} | {params:.1f} | {model.explain_method} | {grid[0]}×{grid[1]} | {form} |"


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    quiet()
    print(f"| model | params (M) | method | map at {SIZE}×{SIZE} | form |")
    print("|---|---|---|---|---|")
    for name in torchvision.models.list_models(module=torchvision.models):
        print(row(name))


if __name__ == "__main__":
    main()
