"""The PredictionBatch of any task, from a model's outputs named as in the IR: one reader per task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otx_xai.errors import UserError
from otx_xai.explain.detection_entity import detection_batch
from otx_xai.explain.entity import ImageInfo, ModelInfo, PredictionBatch, classification_batch
from otx_xai.explain.instance_seg_entity import instance_seg_batch

BATCH_BUILDERS = {"classification": classification_batch, "detection": detection_batch,
                  "instance_segmentation": instance_seg_batch}


def build_prediction_batch(
    outputs: Mapping[str, Any], infos: list[ImageInfo], model: ModelInfo
) -> PredictionBatch:
    """The PredictionBatch of any task, from outputs named as in the IR."""
    if model.task not in BATCH_BUILDERS:
        raise UserError(f"no prediction reader for task {model.task!r}: one of {', '.join(BATCH_BUILDERS)}")
    return BATCH_BUILDERS[model.task](outputs, infos, model)
