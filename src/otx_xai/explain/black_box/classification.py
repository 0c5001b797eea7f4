"""RISE and AISE for classifiers: class scores (softmax, or sigmoid for multilabel) of perturbed inputs.

RISE explains every class at once (one set of masks serves them all). AISE searches per target class:
every class for the ALL target group, else the predicted labels and the top class (the one the audit
metrics judge); the other channels are left at zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otx_xai.explain.black_box.aise import aise_saliency
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.registry import register
from otx_xai.explain.black_box.rise import RiseMaskedMethod, rise_saliency
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ModelInfo, softmax
from otx_xai.explain.methods.base import normalize_map

CALLS_IN_FLIGHT = 4  # batches handed to the runner per call, so an IR keeps its requests busy


def class_scores(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """What a classifier reports: sigmoid per label, or softmax over labels."""
    logits = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-logits)) if multilabel else softmax(logits)


def to_uint8_maps(maps: np.ndarray) -> np.ndarray:
    """(B, K, h, w) float maps as the white-box methods' uint8 maps (``normalize_map``)."""
    return normalize_map(torch.from_numpy(np.ascontiguousarray(maps))).numpy()


def explained_classes(scores: np.ndarray, model: ModelInfo, config: ExplainConfig) -> list[int]:
    """Classes a per-target method explains for one image's scores."""
    if config.target_explain_group == TargetExplainGroup.ALL:
        return list(range(len(scores)))
    top = int(np.argmax(scores))
    if not model.multilabel:
        return [top]
    return sorted({top, *(int(i) for i in np.flatnonzero(scores > config.predicted_maps_conf_thr))})


class ClassificationRISE(RiseMaskedMethod):
    """RISE over a classifier; the masks are made once per input size (and seed)."""

    name = "RISE"

    def __init__(self, config: BlackBoxConfig) -> None:
        self.config = config

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        outputs = run(images)
        masks = self.masks((int(images.shape[-2]), int(images.shape[-1])))

        def score_fn(perturbed: np.ndarray) -> np.ndarray:
            return class_scores(run(perturbed)["logits"], model.multilabel)

        chunk = self.config.batch_size * CALLS_IN_FLIGHT
        maps = np.stack([rise_saliency(image, score_fn, masks, chunk) for image in images])
        return {**outputs, "saliency_map": to_uint8_maps(maps)}


class ClassificationAISE:
    """AISE over a classifier, per explained class."""

    name = "AISE"

    def __init__(self, config: BlackBoxConfig) -> None:
        self.config = config

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {"method": self.name, "preset": c.preset, "iterations": c.aise_iterations,
                "kernel_widths": list(c.aise_kernel_widths), "batch_size": c.batch_size,
                "inferences_per_target": 2 * c.aise_iterations * len(c.aise_kernel_widths)}

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        outputs = run(images)
        scores = class_scores(outputs["logits"], model.multilabel)
        maps = np.zeros((len(images), scores.shape[1], *images.shape[-2:]), dtype=np.float64)
        for index, image in enumerate(images):
            classes = targets[index] if targets is not None else explained_classes(scores[index], model, config)

            def score_fn(perturbed: np.ndarray, classes: list[int] = classes) -> np.ndarray:
                return class_scores(run(perturbed)["logits"], model.multilabel)[:, classes]

            maps[index, classes] = aise_saliency(
                image, score_fn, len(classes), self.config.aise_iterations, self.config.aise_kernel_widths,
                max_images=self.config.batch_size * CALLS_IN_FLIGHT)
        return {**outputs, "saliency_map": to_uint8_maps(maps)}


register("classification", ClassificationRISE.name, ClassificationRISE)
register("classification", ClassificationAISE.name, ClassificationAISE)
