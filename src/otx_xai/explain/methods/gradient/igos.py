"""I-GOS: the saliency of a classifier's class as the smallest, smoothest deletion mask that kills its score,
optimized with integrated gradients and a line search (``igos_core``). Checkpoints only: it needs gradients.

Lightning's predict runs under ``torch.inference_mode``; the method re-enables autograd locally
(``torch.inference_mode(False)`` + ``torch.enable_grad()``) on tensors it makes itself from the batch's
numbers, so the model's parameters (normal tensors) take part in a graph whose only leaf that needs a
gradient is the mask (``torch.autograd.grad``: no parameter gradient is computed or stored).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from otx_xai.errors import UserError
from otx_xai.explain.black_box.classification import class_scores, explained_classes, to_uint8_maps
from otx_xai.explain.black_box.presets import BlackBoxConfig, Preset
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.gradient.igos_core import MaskOptimization, ScoreFn, optimize_mask
from otx_xai.explain.registry import methods


def gradient_model(run: ModelRunner, method: str) -> Any:
    """The torch module behind ``run``; an IR (no gradients) is a one-line UserError naming the methods an
    IR runs."""
    model = getattr(run, "model", None)
    if model is None:
        forward_only = ", ".join(spec.name for spec in methods(task="classification", backend="ir"))
        raise UserError(f"{method} needs gradients, which an OpenVINO IR does not give: explain the .ckpt, or "
                        f"use a forward-only method on the IR ({forward_only})")
    return model


def differentiable_scores(model: Any, multilabel: bool) -> ScoreFn:
    """Class scores of ``model`` (softmax, or sigmoid for multilabel) as a differentiable function."""

    def score(images: Tensor) -> Tensor:
        logits = (model.export_outputs(images, explain=False)["logits"] if hasattr(model, "export_outputs")
                  else model(images))
        return torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=-1)

    return score


class MaskOptimizationMethod:
    """I-GOS and I-GOS++ as explain methods: one optimized mask per explained class of each image."""

    name: ClassVar[str]
    plus_plus: ClassVar[bool]
    start_step: ClassVar[float]  # the line search's first step (the authors' code)
    presets: ClassVar[dict[Preset, tuple[int, int]]]  # preset -> (iterations, integration steps)
    paths_per_evaluation: ClassVar[int]  # straight-line paths one loss evaluation scores

    def __init__(self, config: BlackBoxConfig) -> None:
        self.config = config

    @property
    def optimization(self) -> MaskOptimization:
        c = self.config
        iterations, ig_steps = self.presets[Preset(c.preset)]
        return MaskOptimization(iterations=int(c.iterations or iterations), ig_steps=int(c.ig_steps or ig_steps),
                                step=self.start_step, seed=c.seed)

    def settings(self) -> dict[str, Any]:
        o = self.optimization
        paths = o.iterations * o.ig_steps * self.paths_per_evaluation
        return {"method": self.name, "preset": self.config.preset, "iterations": o.iterations,
                "ig_steps": o.ig_steps, "mask_cells_at_224": 28, "l1": o.l1, "tv": o.tv, "noise": o.noise,
                "line_search_start": o.step, "seed": o.seed,
                "inferences_per_target": f"{paths} forward+backward + {paths} forward per line-search trial"}

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        network = gradient_model(run, self.name)
        outputs = run(images)
        scores = class_scores(outputs["logits"], model.multilabel)
        maps = np.zeros((len(images), scores.shape[1], *images.shape[-2:]), dtype=np.float64)
        score_fn = differentiable_scores(network, model.multilabel)
        optimization = self.optimization
        with torch.inference_mode(False), torch.enable_grad():
            for index, image in enumerate(images):
                classes = targets[index] if targets is not None else explained_classes(scores[index], model, config)
                for target in classes:
                    maps[index, target] = optimize_mask(score_fn, np.array(image, dtype=np.float32), target,
                                                        optimization, self.plus_plus)
        return {**outputs, "saliency_map": to_uint8_maps(maps)}


class IGOS(MaskOptimizationMethod):
    """I-GOS (Qi et al. 2020): one deletion mask, L1 + total variation."""

    name = "IGOS"
    plus_plus = False
    start_step = 1000.0  # the authors' command-line default for both methods (their IGOS function's own: 8)
    presets: ClassVar[dict[Preset, tuple[int, int]]] = {
        Preset.SPEED: (10, 10), Preset.BALANCE: (20, 15), Preset.QUALITY: (30, 20)}
    paths_per_evaluation = 1


FOR_TASK = {"classification": IGOS}
