"""What the black-box methods share on detectors: per-box maps from the model's boxes alone, any detector,
any backend. The methods (D-RISE, AISE) live in ``explain/methods/perturbation/``.

A ``DetectionMethod`` explains the image's detections scoring above ``predicted_maps_conf_thr`` (the boxes
the index lists and the dump writes; ``targets`` narrows them to some labels per image), scoring each
perturbed image by ``detection_score.box_similarity``, and returns the outputs a white-box detector gives:

- ``box_saliency_map`` uint8 (B, N, h, w): row n is detection row n's map (all zero for rows not
  explained, padding included);
- ``saliency_map`` uint8 (B, K, h, w): label c's map is the score-weighted sum of its explained boxes'
  maps, normalized (all zero for a label with no explained box).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from otx_xai.explain.black_box.classification import to_uint8_maps
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo


def explained_rows(bboxes: np.ndarray, labels: np.ndarray, num_classes: int, threshold: float) -> np.ndarray:
    """Detection rows of one image (N, 5) / (N,) worth a map: a real label and a score above ``threshold``."""
    return np.flatnonzero((labels >= 0) & (labels < num_classes) & (bboxes[:, 4] > threshold))


def with_box_maps(outputs: dict[str, np.ndarray], box_maps: list[tuple[np.ndarray, np.ndarray]],
                  num_classes: int, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """``outputs`` plus uint8 ``box_saliency_map`` and ``saliency_map`` from float maps per image:
    ``box_maps[b] = (rows (t,), maps (t, h, w))``."""
    bboxes, labels = np.asarray(outputs["bboxes"]), np.asarray(outputs["labels"])
    per_box = np.zeros((*labels.shape, *size), dtype=np.float64)
    per_class = np.zeros((len(labels), num_classes, *size), dtype=np.float64)
    for image, (rows, maps) in enumerate(box_maps):
        for row, saliency in zip(rows, maps, strict=True):
            per_box[image, row] = saliency
            per_class[image, labels[image, row]] += bboxes[image, row, 4] * saliency
    return {**outputs, "box_saliency_map": to_uint8_maps(per_box), "saliency_map": to_uint8_maps(per_class)}


class DetectionMethod(ABC):
    """Shared by D-RISE and AISE: which rows each image explains, and the outputs they return."""

    name = "base"

    def __init__(self, config: BlackBoxConfig) -> None:
        self.config = config

    @abstractmethod
    def box_maps(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, run: ModelRunner) -> np.ndarray:
        """Float maps (t, h, w) of some boxes (t, 4 in input pixels) of one preprocessed image."""

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        outputs = run(images)
        bboxes, labels = np.asarray(outputs["bboxes"], dtype=np.float32), np.asarray(outputs["labels"])
        classes = len(model.label_names)
        rows = []
        for index in range(len(images)):
            picked = explained_rows(bboxes[index], labels[index], classes, config.predicted_maps_conf_thr)
            if targets is not None:  # the classes a caller reads (the audit metrics' target)
                picked = picked[np.isin(labels[index, picked], targets[index])]
            rows.append(picked)
        boxes = [(image, bboxes[index, rows[index], :4], labels[index, rows[index]])
                 for index, image in enumerate(images)]
        maps = list(zip(rows, self.images_box_maps(boxes, run), strict=True))
        return with_box_maps(outputs, maps, classes, (int(images.shape[-2]), int(images.shape[-1])))

    def images_box_maps(self, boxes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                        run: ModelRunner) -> list[np.ndarray]:
        """``box_maps`` of each (image, boxes, labels), image by image (a method may run them together)."""
        return [self.box_maps(image, image_boxes, labels, run) if len(image_boxes)
                else np.zeros((0, *image.shape[-2:])) for image, image_boxes, labels in boxes]
