"""What the black-box methods share on classifiers: class scores (softmax, or sigmoid for multilabel) of
perturbed inputs, the classes a per-target method explains, float maps as uint8 maps.

The methods themselves live in ``explain/methods/perturbation/`` (RISE, AISE, ...).
"""

from __future__ import annotations

import numpy as np
import torch

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


def put_maps(out: np.ndarray, index: int, classes: list[int], maps: np.ndarray) -> None:
    """Float maps (t, h, w) of ``classes`` of image ``index`` into the uint8 maps ``out`` (B, K, h, w)."""
    out[index, classes] = to_uint8_maps(maps[None])[0]


def explained_classes(scores: np.ndarray, model: ModelInfo, config: ExplainConfig) -> list[int]:
    """Classes a per-target method explains for one image's scores."""
    if config.target_explain_group == TargetExplainGroup.ALL:
        return list(range(len(scores)))
    top = int(np.argmax(scores))
    if not model.multilabel:
        return [top]
    return sorted({top, *(int(i) for i in np.flatnonzero(scores > config.predicted_maps_conf_thr))})
