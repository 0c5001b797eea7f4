"""A checkpoint explained by a black-box method: a LightningModule that predicts with the model's own
forward and explains by perturbing its input, so the Trainer → callback → sink path runs unchanged."""

from __future__ import annotations

from typing import Any

import lightning
import torch
from torch import Tensor

from otx_xai.data.dataset import batch_images
from otx_xai.explain.black_box.protocol import BlackBoxMethod
from otx_xai.explain.black_box.runners import method_torch_runner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo


class BlackBoxModule(lightning.LightningModule):
    """``model`` with ``method`` as its explain algorithm (the explain interface of the README).

    ``forward_explain`` returns the model's plain outputs plus ``saliency_map`` uint8 (B, K, h, w).
    """

    def __init__(self, model: Any, method: BlackBoxMethod, config: ExplainConfig, batch_size: int) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.config = config
        self.batch_size = batch_size
        self.task = getattr(model, "task", "classification")
        self.label_names = list(model.label_names)
        self.multilabel = bool(getattr(model, "multilabel", False))
        self.explain_method = method.name
        self.explain_mode = False

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.task, self.label_names, self.multilabel, self.explain_method)

    def forward(self, images: Tensor) -> Any:
        return self.model(images)

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        # the runner is made here, never stored: a deep copy (the sanity check's) must run its own model
        run = method_torch_runner(self.method, self.model, self.batch_size)
        outputs = self.method.explain(images.detach().cpu().numpy(), run, self.info, self.config)
        return {name: torch.from_numpy(value) for name, value in outputs.items()}

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        images = batch_images(batch)
        if not self.explain_mode or images.numel() == 0:
            return self.model.predict_step(batch, batch_idx)
        return self.forward_explain(images)
