"""The Lightning callback that explains during predict: it switches the module's explain mode on,
turns each batch's outputs into a PredictionBatch and hands it to an ExplainSink."""

from __future__ import annotations

from typing import Any

import lightning

from otx_xai.errors import InterfaceError
from otx_xai.explain.batch_readers import build_prediction_batch
from otx_xai.explain.entity import ImageInfo, ModelInfo, PredictionBatch
from otx_xai.explain.sink import ExplainSink, ImageExplanation


def model_info(module: lightning.LightningModule) -> ModelInfo:
    """What the callback needs to know of a module implementing the explain interface."""
    missing = [name for name in ("label_names", "explain_mode") if not hasattr(module, name)]
    if missing:
        raise InterfaceError(
            f"{type(module).__name__} lacks {', '.join(missing)}: implement the explain interface "
            "(label_names, explain_mode and a predict_step returning saliency_map; see the README)"
        )
    return ModelInfo(
        task=getattr(module, "task", "classification"),
        label_names=list(module.label_names),
        multilabel=bool(getattr(module, "multilabel", False)),
        explain_method=getattr(module, "explain_method", type(module).__name__),
    )


def _batch_infos(batch: Any, batch_idx: int, count: int) -> list[ImageInfo]:
    """The batch's ImageInfo list, or generic ones for a user's plain tensor batches."""
    if isinstance(batch, dict) and "infos" in batch:
        return batch["infos"]
    images = batch["images"] if isinstance(batch, dict) else batch[0] if isinstance(batch, list | tuple) else batch
    size = (int(images.shape[-2]), int(images.shape[-1]))
    return [ImageInfo(f"batch{batch_idx}_{i}", "", size, size, size) for i in range(count)]


class ExplainCallback(lightning.Callback):
    """Explains every predict batch through ``sink`` (target groups, postprocess, dump)."""

    def __init__(self, sink: ExplainSink) -> None:
        self.sink = sink
        self._info: ModelInfo | None = None
        self._previous_mode = False

    def on_predict_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self._info = model_info(pl_module)
        self._previous_mode = pl_module.explain_mode
        pl_module.explain_mode = True
        explainer = getattr(pl_module, "explainer", None)
        config = self.sink.config
        if hasattr(explainer, "max_chunk"):  # the memory bound of ExplainConfig.max_explain_chunk
            explainer.max_chunk = config.max_explain_chunk
        if hasattr(explainer, "configure"):  # the gradient CAMs compute only the classes the group shows
            explainer.configure(config.target_explain_group, config.predicted_maps_conf_thr, config.max_explain_chunk)

    def on_predict_batch_end(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:
        failed = batch.get("failed", []) if isinstance(batch, dict) else []
        first = next((k for k in ("logits", "bboxes") if k in outputs), None) if isinstance(outputs, dict) else None
        if first is None:
            raise InterfaceError(f"{type(pl_module).__name__}.predict_step must return a dict with 'logits' "
                            "(or 'bboxes' for detectors)")
        count = int(outputs[first].shape[0])
        if count == 0:
            self.sink.consume_failures(failed)
            return
        prediction = build_prediction_batch(outputs, _batch_infos(batch, batch_idx, count), self._info)
        self.sink.consume(prediction, failed)

    def on_predict_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        pl_module.explain_mode = self._previous_mode

    @property
    def results(self) -> list[ImageExplanation]:
        """Per-image explanations kept by the sink."""
        return self.sink.results



class PredictionCollector(lightning.Callback):
    """Keeps each predict batch as a PredictionBatch (plain predict: no explain mode, no maps)."""

    def __init__(self) -> None:
        self.batches: list[PredictionBatch] = []
        self._info: ModelInfo | None = None

    def on_predict_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self._info = model_info(pl_module)

    def on_predict_batch_end(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:
        first = next(iter(outputs.values()))
        if int(first.shape[0]):
            count = int(first.shape[0])
            self.batches.append(build_prediction_batch(outputs, _batch_infos(batch, batch_idx, count), self._info))
