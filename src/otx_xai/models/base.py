"""The explain interface every model (ours or a user's) implements, and its shared Lightning plumbing."""

from __future__ import annotations

from typing import Any

import lightning
import torch
from torch import Tensor

from otx_xai.data.dataset import batch_images


class ExplainableModel(lightning.LightningModule):
    """A LightningModule that explains in the same forward pass as it predicts.

    The interface (what the ExplainCallback relies on; a user's own module may implement it without
    subclassing):

    - ``label_names: list[str]`` and ``multilabel: bool``;
    - ``explain_mode: bool``, switched on by the callback for the duration of a predict run;
    - ``predict_step`` returns a dict with ``logits`` (B, K) and, in explain mode, ``saliency_map``
      uint8 (B, K, h, w), ``feature_vector`` float (B, D) and optionally ``feature_map`` (B, C', h, w).

    Subclasses implement ``forward_explain`` (all four outputs) and ``forward`` (logits only);
    ``predict_step`` picks one of them, so predictions are the same with and without explain.
    """

    task: str = "classification"
    explain_method: str = "none"

    def __init__(self) -> None:
        super().__init__()
        self.explain_mode = False

    def _evaluate(self, batch: Any, stage: str) -> None:
        """Log ``<stage>/loss`` and ``<stage>/accuracy`` (the checkpoint monitor) for one batch."""
        raise TypeError(f"{type(self).__name__} does not implement _evaluate")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW over every parameter at the model's ``lr``."""
        return torch.optim.AdamW(self.parameters(), lr=self.lr)

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        """logits, feature_vector, saliency_map and feature_map in one forward pass."""
        raise TypeError(f"{type(self).__name__} does not implement forward_explain")

    def export_outputs(self, images: Tensor, explain: bool) -> dict[str, Tensor]:
        """The outputs an exported IR has, named as in the IR."""
        return self.forward_explain(images) if explain else {"logits": self(images)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cls = type(self)
        checkpoint["otx_xai"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "task": self.task,
                                 "label_names": list(self.label_names)}

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        images = batch_images(batch)
        if images.numel() == 0:
            return {"logits": images.new_zeros(0, len(self.label_names))}
        if self.explain_mode:
            return self.forward_explain(images)
        return {"logits": self(images)}
