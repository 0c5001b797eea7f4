"""The prediction entity: what one batch of predictions (with or without maps) looks like.

Both the checkpoint path (Lightning predict + callback) and the IR path (OpenVINO runtime) produce
``PredictionBatch`` objects from a dict of model outputs named as in the IR, so everything downstream
(target selection, postprocess, dump, metrics) never knows where the maps came from.
The per-task readers (``classification_batch`` here, ``detection_entity``, ``instance_seg_entity``) build
on these types; ``batch_readers.build_prediction_batch`` picks one by task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otx_xai.data.image_info import ImageInfo


@dataclass
class ModelInfo:
    """What is needed to read a model's outputs: the same from a checkpoint or from IR rt_info."""

    task: str
    label_names: list[str]
    multilabel: bool = False
    explain_method: str = "none"


@dataclass
class PredictionBatch:
    """Predictions of one batch, as numpy arrays on the CPU.

    scores: (B, K) class scores (classification); for detection, per-class maximum box score.
    boxes / box_labels / box_scores: per image, detections in original-image pixels.
    masks: per image, (N, H, W) instance masks (instance segmentation).
    saliency_map: uint8 (B, K, h, w), None when the run did not explain.
    box_saliency_map: per image, uint8 (N, h', w'): one map per detection of ``boxes`` (detectors that
    explain per box), else None.
    """

    infos: list[ImageInfo]
    model: ModelInfo
    scores: np.ndarray
    saliency_map: np.ndarray | None = None
    feature_vector: np.ndarray | None = None
    feature_map: np.ndarray | None = None
    boxes: list[np.ndarray] | None = None
    box_labels: list[np.ndarray] | None = None
    box_scores: list[np.ndarray] | None = None
    masks: list[np.ndarray] | None = None
    box_saliency_map: list[np.ndarray] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.infos)


EXTRA_PREFIX = "sag_"  # outputs a method adds for the dump (SAG's roots and graph), kept in ``extras``


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def to_numpy(value: Any) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def classification_batch(
    outputs: Mapping[str, Any], infos: list[ImageInfo], model: ModelInfo
) -> PredictionBatch:
    """A PredictionBatch from classifier outputs named as in the IR (logits, saliency_map, ...)."""
    logits = to_numpy(outputs["logits"]).astype(np.float32)
    scores = 1.0 / (1.0 + np.exp(-logits)) if model.multilabel else softmax(logits)
    extras = {name: to_numpy(value) for name, value in outputs.items() if name.startswith(EXTRA_PREFIX)}
    return PredictionBatch(infos=infos, model=model, scores=scores.astype(np.float32), extras=extras,
                           **explain_outputs(outputs))


def explain_outputs(outputs: Mapping[str, Any]) -> dict[str, np.ndarray | None]:
    """``saliency_map`` (as uint8), ``feature_vector`` and ``feature_map`` of any task's outputs (None if absent)."""
    optional = {name: (to_numpy(outputs[name]) if outputs.get(name) is not None else None)
                for name in ("saliency_map", "feature_vector", "feature_map")}
    if optional["saliency_map"] is not None:
        optional["saliency_map"] = optional["saliency_map"].astype(np.uint8, copy=False)
    return optional
