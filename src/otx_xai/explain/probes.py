"""Watching where a model looks as it learns: overlays of fixed probe images after each validation epoch.

The overlays go to every TensorBoard logger of the Trainer (``add_image``) and, for any logger, to
``<run>/probes/epoch_<NNN>/<image_id>.png``, so a CSV-logged run can be followed too. The maps are the
model's own (its ``forward_explain``) or those of a method run through a ModelRunner (Score-CAM, RISE,
Occlusion, LIME, I-GOS, ...; ``method``), on the model as it is at that epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch

from otx_xai.data.image_io import ImageReadError, read_image_rgb
from otx_xai.errors import UserError
from otx_xai.explain.black_box.protocol import BlackBoxMethod
from otx_xai.explain.black_box.runners import method_torch_runner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.dump import atomic_write_bytes, encode_png
from otx_xai.explain.entity import ImageInfo, ModelInfo
from otx_xai.explain.saliency import colorize, overlay


class ExplainProbesCallback(lightning.Callback):
    """Logs the top-class overlay of the first ``count`` validation images at every validation epoch end;
    ``method`` (with ``model_info`` and ``batch_size``) computes the maps instead of the model's own."""

    def __init__(self, count: int, output_dir: Path, method: BlackBoxMethod | None = None,
                 model_info: ModelInfo | None = None, batch_size: int = 32) -> None:
        if count < 1:
            raise UserError(f"explain_probes={count}: give a positive number of probe images")
        self.count = count
        self.output_dir = output_dir
        self.method, self.model_info, self.batch_size = method, model_info, batch_size
        self._images: torch.Tensor | None = None
        self._infos: list[ImageInfo] = []

    def _collect(self, trainer: lightning.Trainer) -> None:
        images, infos = [], []
        for batch in trainer.datamodule.val_dataloader():
            images.append(batch["images"])
            infos.extend(batch["infos"])
            if len(infos) >= self.count:
                break
        self._images = torch.cat(images)[: self.count]
        self._infos = infos[: self.count]

    def on_validation_epoch_end(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        if self._images is None:
            self._collect(trainer)
        maps, top = self._maps(pl_module)
        epoch = trainer.current_epoch
        for index, info in enumerate(self._infos):
            picture = self._overlay(maps[index, top[index]], info)
            if picture is None:
                continue
            atomic_write_bytes(self.output_dir / f"epoch_{epoch:03d}" / f"{info.image_id}.png", encode_png(picture))
            for logger in trainer.loggers:
                if hasattr(logger.experiment, "add_image"):
                    logger.experiment.add_image(f"explain_probes/{info.image_id}", picture, epoch, dataformats="HWC")

    def _maps(self, pl_module: Any) -> tuple[np.ndarray, np.ndarray]:
        """Saliency maps (B, K, h, w) uint8 of the probe images and their top classes (B,)."""
        if self.method is None:
            with torch.no_grad():
                outputs = pl_module.forward_explain(self._images.to(pl_module.device))
            return outputs["saliency_map"].cpu().numpy(), outputs["logits"].argmax(dim=-1).cpu().numpy()
        images = self._images.cpu().numpy()
        config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS)
        outputs = self.method.explain(images, method_torch_runner(self.method, pl_module, self.batch_size),
                                      self.model_info, config)
        return np.asarray(outputs["saliency_map"]), np.asarray(outputs["logits"]).argmax(axis=-1)

    @staticmethod
    def _overlay(saliency: np.ndarray, info: ImageInfo) -> np.ndarray | None:
        try:
            image = read_image_rgb(info.source_path)
        except ImageReadError:
            return None
        return overlay(colorize(saliency, image.shape[:2]), image)
