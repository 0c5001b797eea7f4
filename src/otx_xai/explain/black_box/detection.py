"""D-RISE and AISE for detectors: per-box maps from the model's boxes alone, any detector, any backend.

Both explain the image's detections scoring above ``predicted_maps_conf_thr`` (the boxes the index lists
and the dump writes; ``targets`` narrows them to some labels per image), scoring each perturbed image by
``detection_score.box_similarity``, and return the outputs a white-box detector gives:

- ``box_saliency_map`` uint8 (B, N, h, w): row n is detection row n's map (all zero for rows not
  explained, padding included);
- ``saliency_map`` uint8 (B, K, h, w): label c's map is the score-weighted sum of its explained boxes'
  maps, normalized (all zero for a label with no explained box).

**D-RISE** (Petsiuk et al. 2021): RISE's masks (``masks.py``, the same settings and seed as RISE) and
RISE's estimate (``rise.py``: Σ_i w_i·M_i / Σ_i M_i) with w_i the box scores of the masked image — one
pass of the masks explains every box of an image at once.
**AISE** (the guide's AISEDetection): the AISE core (``aise.py``) per box, its kernel centres searched
within the box grown by half its size on each side, its kernel widths fractions of the box's smaller
side (preset: 1/7, 1/4, 1 for speed and balance; 1/8 … 1 in five steps for quality, openvino_xai's
divisors); evaluations per width 20 / 50 / 50 by preset, each one inference: the core's ``"kept"``
objective scores the box in the image with only the kernel kept, as openvino_xai's AISEDetection does
(classification keeps the kept-minus-deleted objective, two inferences per evaluation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from otx_xai.explain.black_box.aise import KEPT, aise_saliency, images_per_evaluation
from otx_xai.explain.black_box.classification import CALLS_IN_FLIGHT, to_uint8_maps
from otx_xai.explain.black_box.detection_score import box_score_fn
from otx_xai.explain.black_box.presets import BlackBoxConfig, Preset
from otx_xai.explain.black_box.registry import register
from otx_xai.explain.black_box.rise import RiseMaskedMethod, rise_saliency
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo

AISE_BOX_ITERATIONS = {Preset.SPEED: 20, Preset.BALANCE: 50, Preset.QUALITY: 50}
AISE_BOX_WIDTHS = {Preset.SPEED: tuple(1 / np.linspace(7, 1, 3)), Preset.BALANCE: tuple(1 / np.linspace(7, 1, 3)),
                   Preset.QUALITY: tuple(1 / np.linspace(8, 1, 5))}
BOX_PADDING = 0.5  # AISE searches the box grown by this share of its size on each side
AISE_BOX_OBJECTIVE = KEPT  # a box's score with only the kernel kept: one inference per evaluation


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


class _DetectionMethod(ABC):
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
        maps = []
        for index, image in enumerate(images):
            rows = explained_rows(bboxes[index], labels[index], classes, config.predicted_maps_conf_thr)
            if targets is not None:  # the classes a caller reads (the audit metrics' target)
                rows = rows[np.isin(labels[index, rows], targets[index])]
            maps.append((rows, self.box_maps(image, bboxes[index, rows, :4], labels[index, rows], run)
                         if len(rows) else np.zeros((0, *image.shape[-2:]))))
        return with_box_maps(outputs, maps, classes, (int(images.shape[-2]), int(images.shape[-1])))


class DetectionDRISE(RiseMaskedMethod, _DetectionMethod):
    """D-RISE over a detector; the masks are made once per input size (and seed)."""

    name = "DRISE"

    def box_maps(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, run: ModelRunner) -> np.ndarray:
        masks = self.masks((int(image.shape[-2]), int(image.shape[-1])))
        return rise_saliency(image, box_score_fn(run, boxes, labels), masks, self.config.batch_size * CALLS_IN_FLIGHT)


class DetectionAISE(_DetectionMethod):
    """AISE over a detector, one search per box (and kernel width), all boxes of an image in lockstep."""

    name = "AISE"

    @property
    def iterations(self) -> int:
        return int(self.config.iterations or AISE_BOX_ITERATIONS[Preset(self.config.preset)])

    @property
    def box_widths(self) -> tuple[float, ...]:
        """Kernel widths as fractions of a box's smaller side."""
        return tuple(float(w) for w in (self.config.kernel_widths or AISE_BOX_WIDTHS[Preset(self.config.preset)]))

    @property
    def inferences_per_box(self) -> int:
        """Images the model runs per explained box (the kept-only objective: one per evaluation)."""
        return images_per_evaluation(AISE_BOX_OBJECTIVE) * self.iterations * len(self.box_widths)

    def settings(self) -> dict[str, Any]:
        c = self.config
        return {"method": self.name, "preset": c.preset, "iterations": self.iterations,
                "box_kernel_widths": [round(w, 4) for w in self.box_widths], "box_padding": BOX_PADDING,
                "objective": AISE_BOX_OBJECTIVE, "batch_size": c.batch_size,
                "inferences_per_box": self.inferences_per_box}

    def box_maps(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, run: ModelRunner) -> np.ndarray:
        height, width = int(image.shape[-2]), int(image.shape[-1])
        scaled = boxes / np.array([width, height, width, height], dtype=np.float64)  # x1, y1, x2, y2 in [0, 1]
        box_w, box_h = scaled[:, 2] - scaled[:, 0], scaled[:, 3] - scaled[:, 1]
        lower = np.stack([scaled[:, 1] - BOX_PADDING * box_h, scaled[:, 0] - BOX_PADDING * box_w], axis=1)
        upper = np.stack([scaled[:, 3] + BOX_PADDING * box_h, scaled[:, 2] + BOX_PADDING * box_w], axis=1)
        bounds = np.clip(np.stack([lower, upper], axis=1), 0.0, 1.0)  # (t, 2, 2): [[y, x] low, [y, x] high]
        smaller = np.maximum(np.minimum(box_w, box_h), 1.0 / max(height, width))
        widths = smaller[:, None] * np.asarray(self.box_widths)[None, :]
        return aise_saliency(image, box_score_fn(run, boxes, labels), len(boxes), self.iterations, widths,
                             bounds=bounds, max_images=self.config.batch_size * CALLS_IN_FLIGHT,
                             objective=AISE_BOX_OBJECTIVE)


register("detection", DetectionDRISE.name, DetectionDRISE)
register("detection", "RISE", DetectionDRISE)  # RISE on a detector is D-RISE (the index says DRISE)
register("detection", DetectionAISE.name, DetectionAISE)
