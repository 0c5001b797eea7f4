"""AISE on classifiers and detectors: Gaussian kernels placed by the DIRECT optimizer (the core:
``black_box/aise.py``) where keeping (and deleting) them moves the score most.

**Classifiers**: a search per target class: every class for the ALL target group, else the predicted
labels and the top class (the one the audit metrics judge); the other channels are left at zero. Each
evaluation costs two inferences (the kernel kept, the kernel deleted).
**Detectors** (the guide's AISEDetection): the core per box, its kernel centres searched within the box
grown by half its size on each side, its kernel widths fractions of the box's smaller side (preset: 1/7,
1/4, 1 for speed and balance; 1/8 … 1 in five steps for quality, openvino_xai's divisors); evaluations per
width 20 / 50 / 50 by preset, each one inference: the core's ``"kept"`` objective scores the box in the
image with only the kernel kept, as openvino_xai's AISEDetection does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from otx_xai.explain.black_box.aise import KEPT, AiseSearch, aise_jobs, aise_maps, images_per_evaluation
from otx_xai.explain.black_box.classification import class_scores, explained_classes, put_maps
from otx_xai.explain.black_box.detection import DetectionMethod
from otx_xai.explain.black_box.detection_score import box_scores
from otx_xai.explain.black_box.job_scheduler import run_jobs
from otx_xai.explain.black_box.presets import BlackBoxConfig, Preset
from otx_xai.explain.black_box.runners import ModelRunner, runner_batch
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo

AISE_BOX_ITERATIONS = {Preset.SPEED: 20, Preset.BALANCE: 50, Preset.QUALITY: 50}
AISE_BOX_WIDTHS = {Preset.SPEED: tuple(1 / np.linspace(7, 1, 3)), Preset.BALANCE: tuple(1 / np.linspace(7, 1, 3)),
                   Preset.QUALITY: tuple(1 / np.linspace(8, 1, 5))}
BOX_PADDING = 0.5  # AISE searches the box grown by this share of its size on each side
AISE_BOX_OBJECTIVE = KEPT  # a box's score with only the kernel kept: one inference per evaluation


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
        maps = np.zeros((len(images), scores.shape[1], *images.shape[-2:]), dtype=np.uint8)
        searches = []  # per image: its classes and its searches; all images' searches run side by side
        for index, image in enumerate(images):
            classes = targets[index] if targets is not None else explained_classes(scores[index], model, config)

            def scores_of(outputs: dict[str, np.ndarray], classes: list[int] = classes) -> np.ndarray:
                return class_scores(outputs["logits"], model.multilabel)[:, classes]

            searches.append((classes, aise_jobs(image, scores_of, len(classes), self.config.aise_iterations,
                                                self.config.aise_kernel_widths)))
        run_jobs([job for _, jobs in searches for job in jobs], run, runner_batch(run, self.config.batch_size))
        for index, (classes, jobs) in enumerate(searches):
            put_maps(maps, index, classes, aise_maps(jobs, len(classes), maps.shape[-2:]))
        return {**outputs, "saliency_map": maps}


class DetectionAISE(DetectionMethod):
    """AISE over a detector, one search per box and kernel width, all boxes of all images side by side."""

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
        return self.images_box_maps([(image, boxes, labels)], run)[0]

    def images_box_maps(self, boxes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                        run: ModelRunner) -> list[np.ndarray]:
        """Every box of every image searched side by side (``run_jobs``): the queue stays full."""
        searches = [self._searches(image, image_boxes, labels) if len(image_boxes) else []
                    for image, image_boxes, labels in boxes]
        run_jobs([job for jobs in searches for job in jobs], run, runner_batch(run, self.config.batch_size))
        return [aise_maps(jobs, len(image_boxes), image.shape[-2:])
                for jobs, (image, image_boxes, _) in zip(searches, boxes, strict=True)]

    def _searches(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> list[AiseSearch]:
        """One image's searches: per box and kernel width, centres within the box grown by ``BOX_PADDING``."""
        height, width = int(image.shape[-2]), int(image.shape[-1])
        scaled = boxes / np.array([width, height, width, height], dtype=np.float64)  # x1, y1, x2, y2 in [0, 1]
        box_w, box_h = scaled[:, 2] - scaled[:, 0], scaled[:, 3] - scaled[:, 1]
        lower = np.stack([scaled[:, 1] - BOX_PADDING * box_h, scaled[:, 0] - BOX_PADDING * box_w], axis=1)
        upper = np.stack([scaled[:, 3] + BOX_PADDING * box_h, scaled[:, 2] + BOX_PADDING * box_w], axis=1)
        bounds = np.clip(np.stack([lower, upper], axis=1), 0.0, 1.0)  # (t, 2, 2): [[y, x] low, [y, x] high]
        smaller = np.maximum(np.minimum(box_w, box_h), 1.0 / max(height, width))
        widths = smaller[:, None] * np.asarray(self.box_widths)[None, :]
        return aise_jobs(image, lambda outputs: box_scores(outputs, boxes, labels), len(boxes), self.iterations,
                         widths, bounds=bounds, objective=AISE_BOX_OBJECTIVE)


FOR_TASK = {"classification": ClassificationAISE, "detection": DetectionAISE}
