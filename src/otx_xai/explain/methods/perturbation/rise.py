"""RISE (Petsiuk et al. 2018) on classifiers: random cell masks, each class's map the mean of the masks
weighted by the class score (softmax, or sigmoid for multilabel) of the masked image. One set of masks
serves every explained class at once: those ``explained_classes`` names (every class for the ALL target
group, else the predicted labels and the top class) or the ``targets`` a caller gives; only their maps
are summed (``rise_map_groups``: float32, while the model runs), the other channels are left at zero.
On a detector, RISE is D-RISE (``drise.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from otx_xai.explain.black_box.classification import class_scores, explained_classes, put_maps
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.rise import RiseMaskedMethod, rise_map_groups, targets_per_group
from otx_xai.explain.black_box.runners import ModelRunner, runner_batch, stream_outputs
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
        size = (int(images.shape[-2]), int(images.shape[-1]))
        masks = self.masks(size)
        scores = class_scores(outputs["logits"], model.multilabel)
        maps = np.zeros((len(images), scores.shape[1], *size), dtype=np.uint8)
        group = targets_per_group(self.config.map_memory_mb, size)
        for index, image in enumerate(images):
            classes = targets[index] if targets is not None else explained_classes(scores[index], model, config)

            def score_stream(batches: Iterable[np.ndarray], classes: list[int] = classes) -> Iterator[np.ndarray]:
                for batch_outputs in stream_outputs(run, batches):
                    yield class_scores(batch_outputs["logits"], model.multilabel)[:, classes]

            batch = runner_batch(run, self.config.batch_size)
            for start, group_maps in rise_map_groups(image, score_stream, masks, batch, group):
                put_maps(maps, index, classes[start : start + len(group_maps)], group_maps)
        return {**outputs, "saliency_map": maps}


FOR_TASK = {"classification": ClassificationRISE, "detection": DetectionDRISE}  # the index says DRISE on a detector
