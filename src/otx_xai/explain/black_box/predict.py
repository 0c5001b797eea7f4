"""Predicting and explaining a data loader's batches with a black-box method over any ModelRunner (the
IR path; a checkpoint goes through BlackBoxModule and the Trainer), yielding what ``IRModel.predict``
yields: each batch's PredictionBatch (None when no image was readable) and its failures."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from otx_xai.explain.batch_readers import build_prediction_batch
from otx_xai.explain.black_box.protocol import BlackBoxMethod
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo, PredictionBatch


def predict_black_box(
    batches: Iterable[dict[str, Any]], method: BlackBoxMethod, run: ModelRunner, info: ModelInfo,
    config: ExplainConfig,
) -> Iterator[tuple[PredictionBatch | None, list]]:
    """For each collated batch, in order: its PredictionBatch with black-box maps, and its failures."""
    for batch in batches:
        if not batch["infos"]:
            yield None, batch["failed"]
            continue
        images = np.ascontiguousarray(np.asarray(batch["images"], dtype=np.float32))
        outputs = method.explain(images, run, info, config)
        yield build_prediction_batch(outputs, batch["infos"], info), batch["failed"]
