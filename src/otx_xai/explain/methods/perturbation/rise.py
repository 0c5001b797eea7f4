"""RISE (Petsiuk et al. 2018) on classifiers: random cell masks, each class's map the mean of the masks
weighted by the class score (softmax, or sigmoid for multilabel) of the masked image. One set of masks
serves every class at once. On a detector, RISE is D-RISE (``drise.py``).
"""

from __future__ import annotations

import numpy as np

from otx_xai.explain.black_box.classification import CALLS_IN_FLIGHT, class_scores, to_uint8_maps
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.rise import RiseMaskedMethod, rise_saliency
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.perturbation.drise import DetectionDRISE


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


FOR_TASK = {"classification": ClassificationRISE, "detection": DetectionDRISE}  # the index says DRISE on a detector
